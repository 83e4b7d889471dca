package replica

import (
	"context"
	"fmt"
)

// Verifier is a destination that verify_replication can compare with the
// source. The engine builds the comparison queries; the destination says
// how its stored values render as the source's text form, and runs the
// queries inside one read-only transaction, so every query sees the replica
// at the same position.
type Verifier interface {
	// BeginVerify opens a read-only, snapshot-consistent transaction on the
	// replica.
	BeginVerify(ctx context.Context) (VerifyTx, error)
	// TextExprs render column c, whose quoted name is col, on the source
	// (in Postgres's dialect) and on the replica, so that equal values give
	// equal text. The source's is PostgresTextExpr unless the destination
	// stores the column in a form that cannot be rendered that way.
	TextExprs(c Column, col string) (source, replica string)
	// Hash60 turns a 32-digit hexadecimal md5 expression into a 60-bit
	// integer expression, whose sum is summed exactly (no overflow).
	Hash60(md5 string) string
}

// VerifyTx is a read-only transaction on the replica.
type VerifyTx interface {
	// Strings runs q and returns its rows, every value as text; NULL is nil.
	Strings(ctx context.Context, q string) ([][]*string, error)
	Close() error
}

// oidInterval is the one type PostgresTextExpr normalizes that has no dlt
// data type (table.go declares the others).
const oidInterval = 1186

// PostgresTextExpr is the canonical text of column c of a Postgres table,
// whose quoted name is col, as verify_replication compares it. It is the
// column's text output with session settings taken out of it: timestamptz
// in UTC, bytea as lowercase hex, intervals as months, days and
// microseconds, arrays as a JSON array of their elements' canonical text
// (flattened: a multidimensional array's shape is not compared). The
// source and a Postgres destination use
// it as is; other destinations render their stored values to match.
// Verify's session sets DateStyle ISO and extra_float_digits 1 (Postgres's
// default: shortest exact floats).
func PostgresTextExpr(c Column, col string) string {
	if c.ElemOID != 0 {
		elem := PostgresTextExpr(Column{TypeOID: c.ElemOID, TypeMod: c.TypeMod}, "u.e")
		return fmt.Sprintf("CASE WHEN %[2]s IS NOT NULL THEN array_to_json(ARRAY(SELECT %[1]s FROM unnest(%[2]s) WITH ORDINALITY AS u(e, o) ORDER BY u.o))::text END", elem, col)
	}
	switch c.TypeOID {
	case oidBytea:
		return fmt.Sprintf("encode(%s, 'hex')", col)
	case oidTimestamptz:
		return fmt.Sprintf("(%s AT TIME ZONE 'UTC')::text", col)
	case oidInterval:
		return fmt.Sprintf("(extract(year from %[1]s)*12 + extract(month from %[1]s))::int8 || 'm' || extract(day from %[1]s)::int8 || 'd' || "+
			"(extract(hour from %[1]s)*3600000000 + extract(minute from %[1]s)*60000000 + extract(microseconds from %[1]s))::int8 || 'us'", col)
	}
	return col + "::text"
}

// PostgresHash60 is Verifier.Hash60 in Postgres's dialect.
func PostgresHash60(md5 string) string {
	return fmt.Sprintf("('x' || substr(%s, 1, 15))::bit(60)::int8", md5)
}

// TypeChecker is a destination that stores some source types as text,
// which check_replication reports.
type TypeChecker interface {
	// StoredAsText reports whether column c, not of a text type at the
	// source, is stored as text.
	StoredAsText(c Column) bool
}
