package replica

import (
	"fmt"
	"slices"
	"strings"
	"time"
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

// TypeHint is a dlt column hint, {"data_type": "double"}, as far as it
// decides the stored type: dlt's data_type, precision, scale and timezone.
// The other keys of dlt's column schema are read and checked by the caller
// (functions/args.go) and have no effect on a replica; docs/semantics.md
// says why for each.
type TypeHint struct {
	// DataType is dlt's data type; "" refines the source column's own
	// type (dlt's {"precision": 32} on an existing column), see Refine.
	DataType string `json:"data_type,omitempty"`
	// Precision is digits for decimal, characters for text, fractional
	// second digits for timestamp and time, and bits for bigint (16 gives
	// smallint, 32 integer, 64 bigint). 0 is "not given".
	Precision int `json:"precision,omitempty"`
	Scale     int `json:"scale,omitempty"`
	// Timezone is dlt's timezone flag of a timestamp; nil is dlt's default
	// (true: timestamp with time zone).
	Timezone *bool `json:"timezone,omitempty"`
}

// Equal reports whether two hints ask for the same type.
func (h TypeHint) Equal(o TypeHint) bool {
	return h.DataType == o.DataType && h.Precision == o.Precision && h.Scale == o.Scale &&
		(h.Timezone == nil) == (o.Timezone == nil) && (h.Timezone == nil || *h.Timezone == *o.Timezone)
}

// WithTimezone reports whether a timestamp hint keeps the time zone (dlt's
// default).
func (h TypeHint) WithTimezone() bool { return h.Timezone == nil || *h.Timezone }

// HintTypes are the data types a column hint may name (dlt's names).
var HintTypes = []string{"text", "double", "bool", "timestamp", "bigint", "binary", "json", "complex", "decimal", "wei", "date", "time"}

// Validate checks the hint names a known type and sane precision.
func (h TypeHint) Validate() error {
	if h.DataType != "" && !slices.Contains(HintTypes, h.DataType) {
		return fmt.Errorf("columns: unknown data_type %q (expected one of %s)", h.DataType, strings.Join(HintTypes, ", "))
	}
	switch h.DataType {
	case "bigint":
		// dlt's integer precision is a number of bits.
		if h.Precision > 128 || h.Scale != 0 {
			return fmt.Errorf("columns: invalid bigint precision %d / scale %d (precision is a number of bits, at most 128; no scale)", h.Precision, h.Scale)
		}
		return nil
	case "timestamp", "time":
		if h.Precision > 9 || h.Scale != 0 {
			return fmt.Errorf("columns: invalid %s precision %d / scale %d (precision is fractional second digits, 0 to 9; no scale)", h.DataType, h.Precision, h.Scale)
		}
		return nil
	}
	// Postgres's numeric limit; a destination with a lower one (DuckDB's
	// DECIMAL holds 38 digits) refuses more when it creates the column.
	if h.Precision < 0 || h.Precision > 1000 || h.Scale < 0 || h.Scale > h.Precision && h.Precision > 0 {
		return fmt.Errorf("columns: invalid precision %d / scale %d (precision 1 to 1000, scale 0 to precision)", h.Precision, h.Scale)
	}
	return nil
}

// Source type OIDs that have a dlt data type.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidTimetz      = 1266
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// sourceHint is the dlt column schema of a source column, as dlt's
// sql_database source reflects it: its data type with precision and scale.
// ok is false for types dlt has no data type for (uuid, arrays, ...).
func sourceHint(c Column) (h TypeHint, ok bool) {
	if c.ElemOID != 0 {
		return h, false
	}
	f := false
	switch c.TypeOID {
	case oidBool:
		h.DataType = "bool"
	case oidBytea:
		h.DataType = "binary"
	case oidInt2:
		h = TypeHint{DataType: "bigint", Precision: 16}
	case oidInt4:
		h = TypeHint{DataType: "bigint", Precision: 32}
	case oidInt8:
		h = TypeHint{DataType: "bigint", Precision: 64}
	case oidText:
		h.DataType = "text"
	case oidBpchar, oidVarchar:
		h.DataType = "text"
		if c.TypeMod > 4 {
			h.Precision = int(c.TypeMod - 4)
		}
	case oidJSON, oidJSONB:
		h.DataType = "json"
	case oidFloat4, oidFloat8:
		h.DataType = "double"
	case oidDate:
		h.DataType = "date"
	case oidTime, oidTimetz:
		h.DataType = "time"
	case oidTimestamp:
		h = TypeHint{DataType: "timestamp", Timezone: &f}
	case oidTimestamptz:
		h.DataType = "timestamp"
	case oidNumeric:
		h.DataType = "decimal"
		if c.TypeMod >= 4 {
			t := c.TypeMod - 4
			h.Precision, h.Scale = int(t>>16)&0xffff, int(t&0x7ff)
			if h.Scale > h.Precision {
				h.Precision, h.Scale = 0, 0
			}
		}
	default:
		return h, false
	}
	return h, true
}

// Refine completes a hint that names no data_type from the column's own
// type, as dlt merges a partial hint into the column it already knows:
// {"precision": 32} on a bigint column gives a 32-bit integer, on
// numeric(12,2) numeric(32,2). A hint that names its data_type is returned
// as it is.
func (h TypeHint) Refine(c Column) (TypeHint, error) {
	if h.DataType != "" {
		return h, nil
	}
	base, ok := sourceHint(c)
	if !ok {
		return h, fmt.Errorf("columns: column %q has type %s, which has no dlt data_type to refine; name the data_type", c.Name, c.TypeName)
	}
	if h.Precision != 0 {
		base.Precision = h.Precision
	}
	if h.Scale != 0 {
		base.Scale = h.Scale
	}
	if h.Timezone != nil {
		base.Timezone = h.Timezone
	}
	if base.DataType == "decimal" && base.Scale > base.Precision {
		base.Scale = 0
		if h.Scale != 0 {
			base.Scale = h.Scale
		}
	}
	if base.DataType == "bigint" && base.Precision == 64 {
		base.Precision = 0
	}
	return base, base.Validate()
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
	// History tables keep every version of every row (write_disposition
	// 'scd2'): a change closes the key's current version and opens a new
	// one. They have the columns in HistoryColumns and no _pg_deleted_ts;
	// _pg_lsn is the commit LSN of the transaction that opened the version.
	History bool
	// SnapshotTime is when the rows a snapshot loads became valid (the
	// source's clock when the slot was created): _pg_valid_from of the
	// versions Load and LoadCopy write into a History table.
	SnapshotTime time.Time
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

// Metadata columns of History tables, after _pg_lsn (the LSN of the
// transaction that opened the version): the commit time of that
// transaction, and the commit time and LSN of the one that ended it, NULL
// while the version is current.
const (
	ValidFromColumn  = "_pg_valid_from"
	ValidToColumn    = "_pg_valid_to"
	ValidToLSNColumn = "_pg_valid_to_lsn"
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
	if len(t.Columns) != len(o.Columns) || t.AppendOnly != o.AppendOnly || t.HasDeletedTS != o.HasDeletedTS || t.FullRow != o.FullRow || t.History != o.History {
		return false
	}
	for i := range t.Columns {
		a, b := t.Columns[i], o.Columns[i]
		if a.Name != b.Name || a.TypeOID != b.TypeOID || a.TypeMod != b.TypeMod || a.TypeSQL != b.TypeSQL || a.Key != b.Key ||
			a.ElemOID != b.ElemOID || a.Dims != b.Dims || (a.Hint == nil) != (b.Hint == nil) || a.Hint != nil && !a.Hint.Equal(*b.Hint) {
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
