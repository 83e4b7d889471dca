package replica

import (
	"fmt"
	"slices"
	"strings"
)

// Column is one source column as the destination should store it.
type Column struct {
	Name    string
	TypeOID uint32 // source type OID (a domain is resolved to its base type)
	TypeMod int32
	// TypeName is the source type as format_type prints it, e.g.
	// "numeric(12,2)" or "text[]"; informative, used in errors and docs.
	TypeName string
	// TypeSQL is the column's declared type as a Postgres destination
	// declares it: format_type's output, with every type outside
	// pg_catalog schema-qualified. A domain stays the domain.
	TypeSQL string
	// ElemOID is the element type of an array column (a domain resolved to
	// its base type), zero otherwise; Dims is its declared dimensions.
	ElemOID uint32
	Dims    int
	// Num is the source attnum, which survives a rename; 0 when unknown.
	Num int
	// Missing is the value, in source text form, that rows existing before
	// the column was added hold without any WAL saying so (ADD COLUMN with
	// a constant default); nil when there is none.
	Missing *string
	// HasDefault says the column has a default (or is generated): added to
	// a table with rows, it rewrote the table unless Missing is set.
	HasDefault bool
	// Key marks the columns the destination merges on.
	Key bool
	// NotNull is the source's NOT NULL (attnotnull), for destinations that
	// describe the source's columns to clients; it changes nothing stored.
	NotNull bool
	// Comment is the source's column comment, "" for none; like NotNull,
	// for describing the column to clients.
	Comment string
	// Hint is the user's per-column type override ("columns" argument), nil
	// when none.
	Hint *TypeHint
}

// TypeHint is a dlt-style column hint: {"data_type": "double"}, with
// precision and scale for decimals.
type TypeHint struct {
	DataType  string `json:"data_type"`
	Precision int    `json:"precision,omitempty"`
	Scale     int    `json:"scale,omitempty"`
}

// HintTypes are the data types a column hint may name (dlt's names).
var HintTypes = []string{"text", "double", "bool", "timestamp", "bigint", "binary", "json", "complex", "decimal", "wei", "date", "time"}

// Validate checks the hint names a known type and sane precision.
func (h TypeHint) Validate() error {
	if !slices.Contains(HintTypes, h.DataType) {
		return fmt.Errorf("columns: unknown data_type %q (expected one of %s)", h.DataType, strings.Join(HintTypes, ", "))
	}
	// Postgres's numeric limit; a destination with a lower one (DuckDB's
	// DECIMAL holds 38 digits) refuses more when it creates the column.
	if h.Precision < 0 || h.Precision > 1000 || h.Scale < 0 || h.Scale > h.Precision && h.Precision > 0 {
		return fmt.Errorf("columns: invalid precision %d / scale %d (precision 1 to 1000, scale 0 to precision)", h.Precision, h.Scale)
	}
	return nil
}

// Table is a destination table and the source table it mirrors.
type Table struct {
	// OID is the source relation's OID.
	OID          uint32
	SourceSchema string
	SourceName   string
	// Schema and Name are where the rows land in the destination.
	Schema  string
	Name    string
	Columns []Column
	// AppendOnly tables get every change appended instead of merged: the
	// publication publishes inserts only, so no row is ever replaced.
	AppendOnly bool
	// HasDeletedTS adds the _pg_deleted_ts column (deletes are published).
	HasDeletedTS bool
	// Types are the user-defined types the columns use, each after the
	// ones it depends on.
	Types []TypeDef
	// FullRow tables have no key but REPLICA IDENTITY FULL: a change names
	// its row by all its values, and equal rows are a multiset, so one
	// delete removes one of them.
	FullRow bool
}

// TypeDef is a type outside pg_catalog that a table's columns use, as a
// destination that keeps source types must create it.
type TypeDef struct {
	Name TableName // schema and name, as in the source
	// Kind is pg_type.typtype: 'e' enum, 'd' domain, 'c' composite, 'r'
	// range, 'b' a base type (which only an extension can provide).
	Kind byte
	// SQL is the CREATE statement, for every kind but 'b'.
	SQL string
	// Labels are an enum's labels in order: a destination adds the ones
	// the source added since.
	Labels []string
	// Extension names the extension that provides a base type.
	Extension string
}

// Metadata columns every replicated table carries.
const (
	LSNColumn       = "_pg_lsn"
	DeletedTSColumn = "_pg_deleted_ts"
)

// QualifiedSource is schema.table of the source, unquoted, for messages.
func (t *Table) QualifiedSource() string { return t.SourceSchema + "." + t.SourceName }

// Qualified is schema.table of the destination, unquoted, for messages.
func (t *Table) Qualified() string { return t.Schema + "." + t.Name }

// TableName is the destination table's name.
func (t *Table) TableName() TableName { return TableName{Schema: t.Schema, Name: t.Name} }

// KeyIndexes returns the positions of the key columns.
func (t *Table) KeyIndexes() []int {
	var ks []int
	for i, c := range t.Columns {
		if c.Key {
			ks = append(ks, i)
		}
	}
	return ks
}

// ColumnIndex returns the position of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// SameShape reports whether two descriptions have the same columns, types
// and keys, so a repeated Relation message needs no destination change.
func (t *Table) SameShape(o *Table) bool {
	if len(t.Columns) != len(o.Columns) || t.AppendOnly != o.AppendOnly || t.HasDeletedTS != o.HasDeletedTS || t.FullRow != o.FullRow {
		return false
	}
	for i := range t.Columns {
		a, b := t.Columns[i], o.Columns[i]
		if a.Name != b.Name || a.TypeOID != b.TypeOID || a.TypeMod != b.TypeMod || a.TypeSQL != b.TypeSQL || a.Key != b.Key ||
			a.ElemOID != b.ElemOID || a.Dims != b.Dims || (a.Hint == nil) != (b.Hint == nil) || a.Hint != nil && *a.Hint != *b.Hint {
			return false
		}
	}
	return true
}

func (t *Table) String() string {
	var cols []string
	for _, c := range t.Columns {
		s := c.Name + " " + c.TypeName
		if c.Key {
			s += " key"
		}
		cols = append(cols, s)
	}
	return fmt.Sprintf("%s -> %s (%s)", t.QualifiedSource(), t.Qualified(), strings.Join(cols, ", "))
}

// Row is one row of a table in the source's text output format. A nil
// value is NULL. Unchanged marks TOASTed values the source did not send
// because the update left them untouched: the destination keeps what it has.
type Row struct {
	Values    [][]byte
	Unchanged []bool // nil when every value is present
}

// HasUnchanged reports whether any value must be kept from the destination.
func (r *Row) HasUnchanged() bool {
	for _, u := range r.Unchanged {
		if u {
			return true
		}
	}
	return false
}
