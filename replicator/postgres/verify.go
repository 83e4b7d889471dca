package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

var _ replica.Verifier = (*Destination)(nil)

// TextExprs implements replica.Verifier: the replica keeps the source's
// types, so both sides render the same way.
func (d *Destination) TextExprs(c replica.Column, col string) (string, string) {
	e := replica.PostgresTextExpr(c, col)
	return e, e
}

// Hash60 implements replica.Verifier.
func (d *Destination) Hash60(md5 string) string { return replica.PostgresHash60(md5) }

// BeginVerify implements replica.Verifier: a read-only REPEATABLE READ
// transaction with the text-output settings of verify's source session.
func (d *Destination) BeginVerify(ctx context.Context) (replica.VerifyTx, error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	for _, q := range []string{"SET LOCAL DateStyle = ISO", "SET LOCAL extra_float_digits = 1", "SET LOCAL IntervalStyle = postgres"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			tx.Rollback(context.Background())
			return nil, err
		}
	}
	return &verifyTx{tx: tx}, nil
}

type verifyTx struct{ tx pgx.Tx }

func (v *verifyTx) Strings(ctx context.Context, q string) ([][]*string, error) {
	rows, err := v.tx.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]*string
	n := len(rows.FieldDescriptions())
	for rows.Next() {
		r := make([]*string, n)
		ptrs := make([]any, n)
		for i := range r {
			ptrs[i] = &r[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("reading verify rows: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (v *verifyTx) Close() error { return v.tx.Rollback(context.Background()) }
