package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

var errNotYet = errors.New("postgres destination: not implemented yet")

// tx is one destination transaction on one pooled connection.
type tx struct {
	tx pgx.Tx
}

var _ replica.Tx = (*tx)(nil)

// Begin implements replica.Destination. Changes are applied with
// session_replication_role = replica, as Postgres's own logical
// replication applies them: the destination's triggers and foreign keys
// are for its own writers, and a replicated row already passed the
// source's.
func (d *Destination) Begin(ctx context.Context) (replica.Tx, error) {
	t, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: begin: %w", err)
	}
	if _, err := t.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		t.Rollback(context.Background())
		return nil, fmt.Errorf("postgres destination: session_replication_role = replica needs a superuser, or GRANT SET ON PARAMETER session_replication_role (Postgres 15+): %w", err)
	}
	return &tx{tx: t}, nil
}

func (t *tx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t *tx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

func (t *tx) SaveState(ctx context.Context, st replica.State) error {
	return saveState(ctx, t.tx, st)
}

func (t *tx) SavePosition(ctx context.Context, slot string, lsn uint64, at time.Time) error {
	return savePosition(ctx, t.tx, slot, lsn, at)
}

func (t *tx) DeleteState(ctx context.Context, slot string) error { return deleteState(ctx, t.tx, slot) }

func (t *tx) TableExists(ctx context.Context, schema, name string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))`, schema, name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres destination: %w", err)
	}
	return ok, nil
}

func (t *tx) DropTable(ctx context.Context, schema, name string) (bool, error) {
	ok, err := t.TableExists(ctx, schema, name)
	if err != nil || !ok {
		return false, err
	}
	if _, err := t.tx.Exec(ctx, "DROP TABLE "+ident(schema, name)); err != nil {
		return false, fmt.Errorf("postgres destination: %w", err)
	}
	return true, nil
}

func (t *tx) EnsureTable(ctx context.Context, tbl *replica.Table) ([]string, error) {
	return nil, errNotYet
}

func (t *tx) RenameTable(ctx context.Context, from, to replica.TableName) error { return errNotYet }

func (t *tx) Backfill(ctx context.Context, tbl *replica.Table, cols []int, rows []replica.Row) error {
	return errNotYet
}

func (t *tx) Load(ctx context.Context, tbl *replica.Table, rows []replica.Row, lsn uint64) error {
	return errNotYet
}

func (t *tx) Apply(ctx context.Context, tbl *replica.Table, b *replica.Batch) error { return errNotYet }

func (t *tx) Truncate(ctx context.Context, tbl *replica.Table) error { return errNotYet }
