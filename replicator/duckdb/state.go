package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// stateSchema holds pgcdc's own tables in the destination.
const stateSchema = "_pgcdc"

// stateVersion is the layout of the state tables this code reads and writes.
//
//	1: _pgcdc.state, one row per slot, tables as "schema.name" strings.
//	2: _pgcdc.slots and _pgcdc.tables: the source's identity, what pgcdc
//	   owns, the options fixed at init, and tables by source OID with schema
//	   and name kept apart.
//	3: _pgcdc.slots.write_disposition.
//	4: _pgcdc.slots.continuous: the options of a slot that replicates
//	   continuously (JSON), so that a restarted pgcdc resumes it;
//	   _pgcdc.tables.failed and resync_lsn: a table whose changes failed,
//	   and the position a resync rebuilt it from.
const stateVersion = 4

// migrate creates pgcdc's schemas and state tables, or brings older ones up
// to stateVersion, in one transaction.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS public;
		CREATE SCHEMA IF NOT EXISTS `+ident(stateSchema)+`;
		CREATE TABLE IF NOT EXISTS `+ident(stateSchema, "meta")+` (key VARCHAR NOT NULL, value VARCHAR NOT NULL);
		`+columnsTableSQL); err != nil {
		return err
	}
	version := 0
	var v sql.NullString
	err = conn.QueryRowContext(ctx, "SELECT max(value) FROM "+ident(stateSchema, "meta")+" WHERE key = 'version'").Scan(&v)
	if err != nil {
		return err
	}
	if v.Valid {
		fmt.Sscanf(v.String, "%d", &version)
	} else if exists, err := tableExists(ctx, conn, stateSchema, "state"); err != nil {
		return err
	} else if exists {
		version = 1
	}
	if version > stateVersion {
		return fmt.Errorf("the state in this file is version %d, newer than this pgcdc understands (%d): upgrade pgcdc", version, stateVersion)
	}
	if version == stateVersion {
		_, err = conn.ExecContext(ctx, "COMMIT")
		return err
	}
	if version >= 2 {
		return migrateFrom(ctx, conn, version)
	}
	if _, err := conn.ExecContext(ctx, `
		CREATE TABLE `+ident(stateSchema, "slots")+` (
			slot_name VARCHAR NOT NULL,
			publication VARCHAR NOT NULL,
			lsn UBIGINT NOT NULL,
			system_identifier VARCHAR,
			timeline INTEGER,
			database_name VARCHAR,
			slot_lsn UBIGINT NOT NULL,
			owns_slot BOOLEAN NOT NULL,
			owns_publication BOOLEAN NOT NULL,
			ready BOOLEAN NOT NULL,
			publish VARCHAR NOT NULL,
			dataset VARCHAR,
			schemas VARCHAR NOT NULL,            -- JSON array
			last_replicated_at TIMESTAMPTZ);
		CREATE TABLE `+ident(stateSchema, "tables")+` (
			slot_name VARCHAR NOT NULL,
			source_oid UBIGINT NOT NULL,
			source_schema VARCHAR NOT NULL,
			source_name VARCHAR NOT NULL,
			dest_schema VARCHAR NOT NULL,
			dest_name VARCHAR NOT NULL,
			include_columns VARCHAR,             -- JSON array, NULL for all
			hints VARCHAR)                       -- JSON object, NULL for none`); err != nil {
		return err
	}
	if version == 1 {
		if err := migrateV1(ctx, conn); err != nil {
			return fmt.Errorf("migrating state from version 1: %w", err)
		}
	}
	return migrateFrom(ctx, conn, 2)
}

// migrateFrom brings a layout of version 2 or later up to stateVersion,
// one version's columns at a time, and commits. Columns are only ever
// added at the end, and every statement names the columns it writes.
func migrateFrom(ctx context.Context, conn *sql.Conn, version int) error {
	steps := []struct {
		to  int
		sql string
	}{
		// Every slot recorded before version 3 merges.
		{3, "ALTER TABLE " + ident(stateSchema, "slots") + " ADD COLUMN write_disposition VARCHAR DEFAULT 'merge'"},
		{4, "ALTER TABLE " + ident(stateSchema, "slots") + " ADD COLUMN continuous VARCHAR; " +
			"ALTER TABLE " + ident(stateSchema, "tables") + " ADD COLUMN failed VARCHAR; " +
			"ALTER TABLE " + ident(stateSchema, "tables") + " ADD COLUMN resync_lsn UBIGINT"},
	}
	for _, st := range steps {
		if version < st.to {
			if _, err := conn.ExecContext(ctx, st.sql); err != nil {
				return fmt.Errorf("migrating state to version %d: %w", st.to, err)
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "DELETE FROM "+ident(stateSchema, "meta")+" WHERE key = 'version'; INSERT INTO "+ident(stateSchema, "meta")+
		fmt.Sprintf(" VALUES ('version', '%d')", stateVersion)); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "COMMIT")
	return err
}

// migrateV1 moves version-1 state rows over. Version 1 recorded neither the
// source's identity nor table OIDs nor source names: the identity is
// recorded by the next replicate() that finds the slot consistent with the
// stored position, and each table is bound to its source relation by
// destination name when the stream first names it. Version 1 created every
// slot and publication it recorded.
func migrateV1(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `INSERT INTO `+ident(stateSchema, "slots")+`
		SELECT slot_name, publication, lsn, NULL, NULL, NULL, 0, true, true, true, '', dataset, '[]', last_replicated_at
		FROM `+ident(stateSchema, "state")); err != nil {
		return err
	}
	// Version 1 split names on the first dot, so that is what they mean.
	if _, err := conn.ExecContext(ctx, `INSERT INTO `+ident(stateSchema, "tables")+`
		SELECT slot_name, 0, '', '', split_part(t, '.', 1), substr(t, strpos(t, '.') + 1), NULL, NULL
		FROM (SELECT slot_name, unnest(tables) AS t FROM `+ident(stateSchema, "state")+`) WHERE strpos(t, '.') > 0`); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "DROP TABLE "+ident(stateSchema, "state"))
	return err
}

func tableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, schema, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables()
		WHERE database_name = current_database() AND schema_name = ? AND table_name = ?`, schema, name).Scan(&n)
	return n > 0, err
}

// reservedSchemas are names a dataset can never take: pgcdc's own schema,
// DuckDB's built-in catalogs and schemas, and Postgres's system schemas that
// clients look up by name.
var reservedSchemas = []string{stateSchema, "temp", "system", "memory", "pg_catalog", "information_schema"}

// CheckSchemaName implements replica.Destination. Besides the reserved
// names it refuses the names of attached databases (the file's own among
// them): DuckDB resolves "name.table" as database.table before
// schema.table, so such a dataset would write somewhere else.
func (d *Destination) CheckSchemaName(name string) error {
	lower := strings.ToLower(name)
	for _, r := range reservedSchemas {
		if lower == r {
			return fmt.Errorf("%w: %q is reserved by the DuckDB destination", replica.ErrReservedSchema, name)
		}
	}
	if strings.HasPrefix(lower, "pg_") {
		return fmt.Errorf("%w: %q: the prefix pg_ is reserved for system schemas", replica.ErrReservedSchema, name)
	}
	rows, err := d.db.Query("SELECT database_name FROM duckdb_databases()")
	if err != nil {
		return fmt.Errorf("duckdb: listing databases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var db string
		if err := rows.Scan(&db); err != nil {
			return err
		}
		if strings.EqualFold(db, name) {
			return fmt.Errorf("%w: %q is the name of a database attached to DuckDB (the replica file itself is attached under its file name)", replica.ErrReservedSchema, name)
		}
	}
	return rows.Err()
}

// State implements replica.Destination.
func (d *Destination) State(ctx context.Context, slot string) (replica.State, bool, error) {
	sts, err := d.states(ctx, "WHERE slot_name = ?", slot)
	if err != nil || len(sts) == 0 {
		return replica.State{}, false, err
	}
	return sts[0], true, nil
}

// States implements replica.Destination.
func (d *Destination) States(ctx context.Context) ([]replica.State, error) {
	return d.states(ctx, "")
}

func (d *Destination) states(ctx context.Context, where string, args ...any) ([]replica.State, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT slot_name, publication, lsn, COALESCE(system_identifier, ''), COALESCE(timeline, 0),
		COALESCE(database_name, ''), slot_lsn, owns_slot, owns_publication, ready, publish, COALESCE(dataset, ''), schemas, last_replicated_at, COALESCE(write_disposition, 'merge'), continuous
		FROM `+ident(stateSchema, "slots")+" "+where+" ORDER BY slot_name", args...)
	if err != nil {
		return nil, fmt.Errorf("duckdb: read state: %w", err)
	}
	defer rows.Close()
	var out []replica.State
	for rows.Next() {
		var st replica.State
		var schemas string
		var last sql.NullTime
		var cont sql.NullString
		if err := rows.Scan(&st.Slot, &st.Publication, &st.LSN, &st.Source.SystemID, &st.Source.Timeline, &st.Source.Database,
			&st.SlotLSN, &st.OwnsSlot, &st.OwnsPublication, &st.Ready, &st.Publish, &st.Dataset, &schemas, &last, &st.WriteDisposition, &cont); err != nil {
			return nil, fmt.Errorf("duckdb: read state: %w", err)
		}
		if cont.Valid {
			st.Continuous = &replica.Continuous{}
			if err := json.Unmarshal([]byte(cont.String), st.Continuous); err != nil {
				return nil, fmt.Errorf("duckdb: read state of slot %q: continuous: %w", st.Slot, err)
			}
		}
		if err := json.Unmarshal([]byte(schemas), &st.Schemas); err != nil {
			return nil, fmt.Errorf("duckdb: read state of slot %q: schemas: %w", st.Slot, err)
		}
		if last.Valid {
			st.LastReplicated = last.Time
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Tables, err = d.tables(ctx, out[i].Slot); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *Destination) tables(ctx context.Context, slot string) ([]replica.TableState, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT source_oid, source_schema, source_name, dest_schema, dest_name, include_columns, hints,
		COALESCE(failed, ''), COALESCE(resync_lsn, 0)
		FROM `+ident(stateSchema, "tables")+` WHERE slot_name = ? ORDER BY rowid`, slot)
	if err != nil {
		return nil, fmt.Errorf("duckdb: read state: %w", err)
	}
	defer rows.Close()
	var out []replica.TableState
	for rows.Next() {
		var t replica.TableState
		var include, hints sql.NullString
		if err := rows.Scan(&t.OID, &t.Source.Schema, &t.Source.Name, &t.Dest.Schema, &t.Dest.Name, &include, &hints, &t.Failed, &t.ResyncLSN); err != nil {
			return nil, fmt.Errorf("duckdb: read state: %w", err)
		}
		if include.Valid {
			if err := json.Unmarshal([]byte(include.String), &t.IncludeColumns); err != nil {
				return nil, fmt.Errorf("duckdb: read state of slot %q: include_columns: %w", slot, err)
			}
		}
		if hints.Valid {
			if err := json.Unmarshal([]byte(hints.String), &t.Hints); err != nil {
				return nil, fmt.Errorf("duckdb: read state of slot %q: hints: %w", slot, err)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (t *tx) SaveState(ctx context.Context, st replica.State) error {
	if err := t.DeleteState(ctx, st.Slot); err != nil {
		return err
	}
	schemas, err := json.Marshal(nonNil(st.Schemas))
	if err != nil {
		return err
	}
	var cont any
	if st.Continuous != nil {
		b, err := json.Marshal(st.Continuous)
		if err != nil {
			return err
		}
		cont = string(b)
	}
	if err := t.exec(ctx, `INSERT INTO `+ident(stateSchema, "slots")+` (slot_name, publication, lsn, system_identifier, timeline,
		database_name, slot_lsn, owns_slot, owns_publication, ready, publish, dataset, schemas, last_replicated_at, write_disposition, continuous)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?)`,
		st.Slot, st.Publication, st.LSN, nullString(st.Source.SystemID), nullInt(st.Source.Timeline), nullString(st.Source.Database),
		st.SlotLSN, st.OwnsSlot, st.OwnsPublication, st.Ready, st.Publish, nullString(st.Dataset), string(schemas), timestamp(st.LastReplicated),
		disposition(st), cont); err != nil {
		return err
	}
	for _, tb := range st.Tables {
		var include, hints any
		if tb.IncludeColumns != nil {
			b, err := json.Marshal(tb.IncludeColumns)
			if err != nil {
				return err
			}
			include = string(b)
		}
		if len(tb.Hints) > 0 {
			b, err := json.Marshal(tb.Hints)
			if err != nil {
				return err
			}
			hints = string(b)
		}
		var resync any
		if tb.ResyncLSN != 0 {
			resync = tb.ResyncLSN
		}
		if err := t.exec(ctx, `INSERT INTO `+ident(stateSchema, "tables")+` (slot_name, source_oid, source_schema, source_name,
			dest_schema, dest_name, include_columns, hints, failed, resync_lsn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Slot, uint64(tb.OID), tb.Source.Schema, tb.Source.Name, tb.Dest.Schema, tb.Dest.Name, include, hints, nullString(tb.Failed), resync); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) SavePosition(ctx context.Context, slot string, lsn uint64, at time.Time) error {
	res, err := t.conn.ExecContext(ctx, `UPDATE `+ident(stateSchema, "slots")+`
		SET lsn = ?, last_replicated_at = CAST(? AS TIMESTAMPTZ) WHERE slot_name = ?`, lsn, timestamp(at), slot)
	if err != nil {
		return fmt.Errorf("duckdb: saving position: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return errors.New("duckdb: saving position: the slot's state row is gone")
	}
	return nil
}

func (t *tx) DeleteState(ctx context.Context, slot string) error {
	if err := t.mergeAll(ctx); err != nil {
		return err
	}
	if err := t.exec(ctx, "DELETE FROM "+ident(stateSchema, "slots")+" WHERE slot_name = ?", slot); err != nil {
		return err
	}
	return t.exec(ctx, "DELETE FROM "+ident(stateSchema, "tables")+" WHERE slot_name = ?", slot)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int32) any {
	if n == 0 {
		return nil
	}
	return n
}

func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// disposition is the write disposition a state stores: merge unless set.
func disposition(st replica.State) string {
	if st.WriteDisposition == "" {
		return replica.DispositionMerge
	}
	return st.WriteDisposition
}
