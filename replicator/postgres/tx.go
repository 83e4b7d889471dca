package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// tx is one destination transaction on one pooled connection.
type tx struct {
	d  *Destination
	tx pgx.Tx
	// created are the tables this transaction created; their primary keys
	// wait in pendingKeys until commit, after the snapshot is loaded.
	created     map[replica.TableName]bool
	pendingKeys map[replica.TableName][]string
	// keys caches, per table, whether its key is its primary key (hasKey).
	keys map[replica.TableName]bool
	// stages are the temporary staging tables, one per table shape.
	stages  map[*replica.Table]string
	counter int
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
	return &tx{d: d, tx: t, created: map[replica.TableName]bool{}, pendingKeys: map[replica.TableName][]string{},
		stages: map[*replica.Table]string{}, keys: map[replica.TableName]bool{}}, nil
}

func (t *tx) exec(ctx context.Context, q string, args ...any) error {
	if _, err := t.tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("postgres destination: %w\n(statement: %s)", err, abbreviate(q))
	}
	return nil
}

// sendBatch runs queued statements in one round trip; an error names the
// statement that failed.
func (t *tx) sendBatch(ctx context.Context, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	res := t.tx.SendBatch(ctx, b)
	for _, q := range b.QueuedQueries {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("postgres destination: %w\n(statement: %s)", err, abbreviate(q.SQL))
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("postgres destination: %w", err)
	}
	return nil
}

func abbreviate(q string) string {
	if len(q) > 300 {
		return q[:300] + "..."
	}
	return q
}

func (t *tx) next() int {
	t.counter++
	return t.counter
}

// Commit implements replica.Tx: the primary keys of the tables created in
// this transaction are built first, once their rows are in.
func (t *tx) Commit(ctx context.Context) error {
	for name, cols := range t.pendingKeys {
		if err := t.addKey(ctx, name, cols); err != nil {
			t.tx.Rollback(context.Background())
			return err
		}
	}
	t.pendingKeys = map[replica.TableName][]string{}
	return t.tx.Commit(ctx)
}

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
	delete(t.keys, replica.TableName{Schema: schema, Name: name})
	if _, err := t.tx.Exec(ctx, "DROP TABLE "+ident(schema, name)); err != nil {
		return false, fmt.Errorf("postgres destination: %w", err)
	}
	return true, nil
}
