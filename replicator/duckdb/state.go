package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pgcdc/pgcdc/replicator"
)

// stateSchema holds pgcdc's own tables in the destination.
const stateSchema = "_pgcdc"

// migrate creates pgcdc's schemas and state tables.
func migrate(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS public;
		CREATE SCHEMA IF NOT EXISTS `+ident(stateSchema)+`;
		CREATE TABLE IF NOT EXISTS `+ident(stateSchema, "state")+` (
			slot_name VARCHAR NOT NULL,
			publication VARCHAR NOT NULL,
			lsn UBIGINT NOT NULL,
			dataset VARCHAR,
			tables VARCHAR[],
			last_replicated_at TIMESTAMPTZ)`)
	return err
}

// State implements replicator.Destination.
func (d *Destination) State(ctx context.Context, slot string) (replicator.State, bool, error) {
	sts, err := d.states(ctx, "WHERE slot_name = ?", slot)
	if err != nil || len(sts) == 0 {
		return replicator.State{}, false, err
	}
	return sts[0], true, nil
}

// States implements replicator.Destination.
func (d *Destination) States(ctx context.Context) ([]replicator.State, error) {
	return d.states(ctx, "")
}

func (d *Destination) states(ctx context.Context, where string, args ...any) ([]replicator.State, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT slot_name, publication, lsn, COALESCE(dataset, ''),
		COALESCE(array_to_string(tables, chr(1)), ''), last_replicated_at
		FROM `+ident(stateSchema, "state")+" "+where+" ORDER BY slot_name", args...)
	if err != nil {
		return nil, fmt.Errorf("duckdb: read state: %w", err)
	}
	defer rows.Close()
	var out []replicator.State
	for rows.Next() {
		var st replicator.State
		var tables string
		var last sql.NullTime
		if err := rows.Scan(&st.Slot, &st.Publication, &st.LSN, &st.Dataset, &tables, &last); err != nil {
			return nil, fmt.Errorf("duckdb: read state: %w", err)
		}
		if tables != "" {
			st.Tables = strings.Split(tables, "\x01")
		}
		if last.Valid {
			st.LastReplicated = last.Time
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (t *tx) SaveState(ctx context.Context, st replicator.State) error {
	if err := t.DeleteState(ctx, st.Slot); err != nil {
		return err
	}
	var last any
	if !st.LastReplicated.IsZero() {
		last = st.LastReplicated.UTC().Format(time.RFC3339Nano)
	}
	var dataset any
	if st.Dataset != "" {
		dataset = st.Dataset
	}
	return t.exec(ctx, `INSERT INTO `+ident(stateSchema, "state")+`
		VALUES (?, ?, ?, ?, string_split(?, chr(1)), CAST(? AS TIMESTAMPTZ))`,
		st.Slot, st.Publication, st.LSN, dataset, strings.Join(st.Tables, "\x01"), last)
}

func (t *tx) DeleteState(ctx context.Context, slot string) error {
	return t.exec(ctx, "DELETE FROM "+ident(stateSchema, "state")+" WHERE slot_name = ?", slot)
}
