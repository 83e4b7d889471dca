package sql

import (
	"math"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Type is a Postgres type as the catalog declares it and as clients see it in
// ParameterDescription and RowDescription.
type Type struct {
	// Name is the Postgres spelling, e.g. "text[]", "integer", "pg_lsn".
	Name string
	// OID is the type's pg_type OID, sent on the wire.
	OID uint32
}

// String is the type's name, as \df shows it.
func (t Type) String() string { return t.Name }

// pgLSNOID is pg_lsn's OID; pgtype has no constant for it.
const pgLSNOID = 3220

// class groups types by the Go value that carries them and the conversion
// rules that apply. Values have a class too: classUnknown is Postgres'
// "unknown", an untyped literal the target type's input function interprets.
type class uint8

const (
	classUnknown class = iota
	classText
	classTextArray
	classInteger
	classNumeric
	classBoolean
	classJSON
	classOther // a type we can name but not evaluate (pg_lsn, bit strings, ...)
)

type typeInfo struct {
	Type
	class    class
	min, max int64     // classInteger range
	elem     *typeInfo // classTextArray element type
}

var (
	typeText   = &typeInfo{Type: Type{"text", pgtype.TextOID}, class: classText}
	typeRecord = Type{"record", pgtype.RecordOID}
)

// types are the types the catalog and argument casts may name, by their
// canonical names.
var types = func() map[string]*typeInfo {
	varchar := &typeInfo{Type: Type{"character varying", pgtype.VarcharOID}, class: classText}
	bpchar := &typeInfo{Type: Type{"character", pgtype.BPCharOID}, class: classText}
	name := &typeInfo{Type: Type{"name", pgtype.NameOID}, class: classText}
	all := []*typeInfo{
		typeText, varchar, bpchar, name,
		{Type: Type{"text[]", pgtype.TextArrayOID}, class: classTextArray, elem: typeText},
		{Type: Type{"character varying[]", pgtype.VarcharArrayOID}, class: classTextArray, elem: varchar},
		{Type: Type{"character[]", pgtype.BPCharArrayOID}, class: classTextArray, elem: bpchar},
		{Type: Type{"name[]", pgtype.NameArrayOID}, class: classTextArray, elem: name},
		{Type: Type{"smallint", pgtype.Int2OID}, class: classInteger, min: math.MinInt16, max: math.MaxInt16},
		{Type: Type{"integer", pgtype.Int4OID}, class: classInteger, min: math.MinInt32, max: math.MaxInt32},
		{Type: Type{"bigint", pgtype.Int8OID}, class: classInteger, min: math.MinInt64, max: math.MaxInt64},
		{Type: Type{"boolean", pgtype.BoolOID}, class: classBoolean},
		{Type: Type{"jsonb", pgtype.JSONBOID}, class: classJSON},
		{Type: Type{"json", pgtype.JSONOID}, class: classJSON},
		{Type: Type{"pg_lsn", pgLSNOID}, class: classOther},
		{Type: Type{"timestamptz", pgtype.TimestamptzOID}, class: classOther},
		{Type: Type{"double precision", pgtype.Float8OID}, class: classOther},
	}
	m := make(map[string]*typeInfo, len(all))
	for _, t := range all {
		m[t.Name] = t
	}
	return m
}()

// typeAliases maps the names the parser produces to canonical ones: the
// grammar turns "integer" into pg_catalog.int4 and "varchar" into
// pg_catalog.varchar, while "int4" written as such stays "int4".
var typeAliases = map[string]string{
	"int": "integer", "int4": "integer", "int2": "smallint", "int8": "bigint",
	"bool": "boolean", "varchar": "character varying", "bpchar": "character", "float8": "double precision",
}

// resolveType finds the type a TypeName node spells, or returns a display
// name for the error when it is not one we know.
func resolveType(tn *pg_query.TypeName) (*typeInfo, string) {
	var parts []string
	for _, n := range tn.GetNames() {
		parts = append(parts, n.GetString_().GetSval())
	}
	display := strings.TrimPrefix(strings.Join(parts, "."), "pg_catalog.")
	for range tn.GetArrayBounds() {
		display += "[]"
	}
	if tn.GetSetof() || tn.GetPctType() || len(tn.GetArrayBounds()) > 1 || len(parts) == 0 || len(parts) > 2 {
		return nil, display
	}
	if len(parts) == 2 && parts[0] != "pg_catalog" {
		return nil, display
	}
	base := parts[len(parts)-1]
	if a, ok := typeAliases[base]; ok {
		base = a
	}
	if len(tn.GetArrayBounds()) == 1 {
		base += "[]"
	}
	t, ok := types[base]
	if !ok {
		return nil, display
	}
	return t, t.Name
}
