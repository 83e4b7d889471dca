package duckdb

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

var _ replica.Verifier = (*Destination)(nil)

// TextExprs implements replica.Verifier: each stored DuckDB type rendered
// as replica.PostgresTextExpr renders the source column.
func (d *Destination) TextExprs(c replica.Column, col string) (string, string) {
	if columnType(c) == "VARCHAR" {
		// Stored as the source's text output (unconstrained numeric, arrays
		// DuckDB cannot list, types it does not know).
		return col + "::text", col
	}
	src := replica.PostgresTextExpr(c, col)
	if c.ElemOID != 0 {
		// A list of the elements' text, flattened as the source's unnest
		// flattens.
		list := col
		for i := 1; i < c.Dims; i++ {
			list = "flatten(" + list + ")"
		}
		elem := replica.Column{TypeOID: c.ElemOID, TypeMod: c.TypeMod}
		return src, fmt.Sprintf("CAST(to_json(list_transform(%s, lambda x: %s)) AS VARCHAR)", list, scalarText(scalarType(elem.TypeOID, elem.TypeMod), "x"))
	}
	return src, scalarText(columnType(c), col)
}

// scalarText renders a value of DuckDB type typ as Postgres's canonical
// text (replica.PostgresTextExpr).
func scalarText(typ, col string) string {
	switch typ {
	case "VARCHAR":
		return col
	case "DOUBLE":
		return floatText(col, "1e15")
	case "FLOAT":
		return floatText(col, "1e6")
	case "TIMESTAMPTZ":
		return fmt.Sprintf("CAST(timezone('UTC', %s) AS VARCHAR)", col)
	case "BLOB":
		return fmt.Sprintf("lower(hex(%s))", col)
	case "INTERVAL":
		return fmt.Sprintf("CAST(datepart('year', %[1]s)*12 + datepart('month', %[1]s) AS VARCHAR) || 'm' || CAST(datepart('day', %[1]s) AS VARCHAR) || 'd' || "+
			"CAST(datepart('hour', %[1]s)*3600000000 + datepart('minute', %[1]s)*60000000 + datepart('microseconds', %[1]s) AS VARCHAR) || 'us'", col)
	}
	return fmt.Sprintf("CAST(%s AS VARCHAR)", col)
}

// floatText renders a DOUBLE or FLOAT as Postgres does. Both write the
// shortest digits that read back exactly, but Postgres writes 3, NaN and
// Infinity where DuckDB writes 3.0, nan and inf, and it switches to an
// exponent from 1e15 (1e6 for float4) where DuckDB still writes every digit
// (1000000000000000.0 for 1e+15).
func floatText(col, exp string) string {
	abs := fmt.Sprintf("CAST(abs(%s) AS VARCHAR)", col)
	intPart := fmt.Sprintf("split_part(%s, '.', 1)", abs)
	digits := fmt.Sprintf("rtrim(%s || rtrim(split_part(%s, '.', 2), '0'), '0')", intPart, abs)
	return fmt.Sprintf(`CASE WHEN isnan(%[1]s) THEN 'NaN' WHEN isinf(%[1]s) AND %[1]s > 0 THEN 'Infinity' WHEN isinf(%[1]s) THEN '-Infinity' `+
		`WHEN abs(%[1]s) >= %[2]s AND NOT contains(CAST(%[1]s AS VARCHAR), 'e') THEN `+
		`(CASE WHEN %[1]s < 0 THEN '-' ELSE '' END) || substr(%[3]s, 1, 1) || (CASE WHEN length(%[3]s) > 1 THEN '.' || substr(%[3]s, 2) ELSE '' END) || `+
		`'e+' || lpad(CAST(length(%[4]s) - 1 AS VARCHAR), 2, '0') `+
		`ELSE regexp_replace(CAST(%[1]s AS VARCHAR), '\.0$', '') END`, col, exp, digits, intPart)
}

// Hash60 implements replica.Verifier.
func (d *Destination) Hash60(md5 string) string {
	return fmt.Sprintf("CAST('0x' || substr(%s, 1, 15) AS BIGINT)", md5)
}

// BeginVerify implements replica.Verifier. A DuckDB transaction reads one
// snapshot of the database.
func (d *Destination) BeginVerify(ctx context.Context) (replica.VerifyTx, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &verifyTx{tx: tx}, nil
}

type verifyTx struct{ tx *sql.Tx }

func (v *verifyTx) Strings(ctx context.Context, q string) ([][]*string, error) {
	rows, err := v.tx.QueryContext(ctx, q)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]*string
	for rows.Next() {
		r := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range r {
			ptrs[i] = &r[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (v *verifyTx) Close() error { return v.tx.Rollback() }

var _ replica.TypeChecker = (*Destination)(nil)

// StoredAsText implements replica.TypeChecker.
func (d *Destination) StoredAsText(c replica.Column) bool {
	switch c.TypeOID {
	case 25, 1043, 1042, 19: // text, varchar, char, name
		return false
	}
	return c.Hint == nil && columnType(c) == "VARCHAR"
}
