package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// stateSchema holds pgcdc's own tables in the destination.
const stateSchema = "_pgcdc"

// stateVersion is the layout of the state tables; the same layout as the
// DuckDB destination's version of the same number, in Postgres types
// (version 3 added slots.write_disposition; version 4 slots.continuous and
// tables.failed and resync_lsn). Columns are only ever added at the end,
// so a migrated layout and a new one are the same.
const stateVersion = 4

// migrate creates pgcdc's state schema. Several pgcdc processes may share
// one destination database (each with its own slots), so the check runs
// under an advisory lock.
func (d *Destination) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('pgcdc state migration'))"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident(stateSchema)+`;
			CREATE TABLE IF NOT EXISTS `+ident(stateSchema, "meta")+` (key text PRIMARY KEY, value text NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, "SELECT value::int FROM "+ident(stateSchema, "meta")+" WHERE key = 'version'").Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if version > stateVersion {
			return fmt.Errorf("the state in this database is version %d, newer than this pgcdc understands (%d): upgrade pgcdc", version, stateVersion)
		}
		if version == stateVersion {
			return nil
		}
		if version >= 2 {
			if version < 3 {
				if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(stateSchema, "slots")+` ADD COLUMN write_disposition text NOT NULL DEFAULT 'merge'`); err != nil {
					return err
				}
			}
			if version < 4 {
				if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(stateSchema, "slots")+` ADD COLUMN continuous jsonb;
					ALTER TABLE `+ident(stateSchema, "tables")+` ADD COLUMN failed text, ADD COLUMN resync_lsn pg_lsn`); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `UPDATE `+ident(stateSchema, "meta")+` SET value = $1 WHERE key = 'version'`, fmt.Sprint(stateVersion))
			return err
		}
		_, err = tx.Exec(ctx, `
			CREATE TABLE `+ident(stateSchema, "slots")+` (
				slot_name text PRIMARY KEY,
				publication text NOT NULL,
				lsn pg_lsn NOT NULL,
				system_identifier text,
				timeline integer,
				database_name text,
				slot_lsn pg_lsn NOT NULL,
				owns_slot boolean NOT NULL,
				owns_publication boolean NOT NULL,
				ready boolean NOT NULL,
				publish text NOT NULL,
				dataset text,
				schemas jsonb NOT NULL,
				last_replicated_at timestamptz,
				write_disposition text NOT NULL DEFAULT 'merge',
				continuous jsonb);
			CREATE TABLE `+ident(stateSchema, "tables")+` (
				slot_name text NOT NULL,
				position integer NOT NULL,
				source_oid oid NOT NULL,
				source_schema text NOT NULL,
				source_name text NOT NULL,
				dest_schema text NOT NULL,
				dest_name text NOT NULL,
				include_columns jsonb,
				hints jsonb,
				failed text,
				resync_lsn pg_lsn,
				PRIMARY KEY (slot_name, position));
			INSERT INTO `+ident(stateSchema, "meta")+` VALUES ('version', '4')
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
		return err
	})
}

// reservedSchemas are names a dataset can never take: pgcdc's state schema,
// the schema that declares pgcdc's functions to clients, and Postgres's
// system schemas (pg_* is refused separately).
var reservedSchemas = []string{stateSchema, "pgcdc", "information_schema"}

// CheckSchemaName implements replica.Destination.
func (d *Destination) CheckSchemaName(name string) error {
	lower := strings.ToLower(name)
	for _, r := range reservedSchemas {
		if lower == r {
			return fmt.Errorf("%w: %q is reserved by pgcdc or Postgres", replica.ErrReservedSchema, name)
		}
	}
	if strings.HasPrefix(lower, "pg_") {
		return fmt.Errorf("%w: %q: the prefix pg_ is reserved for system schemas", replica.ErrReservedSchema, name)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// State implements replica.Destination.
func (d *Destination) State(ctx context.Context, slot string) (replica.State, bool, error) {
	sts, err := states(ctx, d.pool, "WHERE slot_name = $1", slot)
	if err != nil || len(sts) == 0 {
		return replica.State{}, false, err
	}
	return sts[0], true, nil
}

// States implements replica.Destination.
func (d *Destination) States(ctx context.Context) ([]replica.State, error) {
	return states(ctx, d.pool, "")
}

func states(ctx context.Context, q querier, where string, args ...any) ([]replica.State, error) {
	rows, err := q.Query(ctx, `SELECT slot_name, publication, lsn::text, COALESCE(system_identifier, ''), COALESCE(timeline, 0),
		COALESCE(database_name, ''), slot_lsn::text, owns_slot, owns_publication, ready, publish, COALESCE(dataset, ''), schemas::text, last_replicated_at, write_disposition, continuous::text
		FROM `+ident(stateSchema, "slots")+" "+where+" ORDER BY slot_name", args...)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: read state: %w", err)
	}
	var out []replica.State
	for rows.Next() {
		var st replica.State
		var lsn, slotLSN, schemas string
		var last *time.Time
		var cont *string
		if err := rows.Scan(&st.Slot, &st.Publication, &lsn, &st.Source.SystemID, &st.Source.Timeline, &st.Source.Database,
			&slotLSN, &st.OwnsSlot, &st.OwnsPublication, &st.Ready, &st.Publish, &st.Dataset, &schemas, &last, &st.WriteDisposition, &cont); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres destination: read state: %w", err)
		}
		if st.LSN, err = parseLSN(lsn); err == nil {
			st.SlotLSN, err = parseLSN(slotLSN)
		}
		if err == nil {
			err = json.Unmarshal([]byte(schemas), &st.Schemas)
		}
		if err == nil && cont != nil {
			st.Continuous = &replica.Continuous{}
			err = json.Unmarshal([]byte(*cont), st.Continuous)
		}
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres destination: read state of slot %q: %w", st.Slot, err)
		}
		if last != nil {
			st.LastReplicated = *last
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres destination: read state: %w", err)
	}
	for i := range out {
		if out[i].Tables, err = tables(ctx, q, out[i].Slot); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func tables(ctx context.Context, q querier, slot string) ([]replica.TableState, error) {
	rows, err := q.Query(ctx, `SELECT source_oid, source_schema, source_name, dest_schema, dest_name, include_columns::text, hints::text,
		COALESCE(failed, ''), COALESCE(resync_lsn, '0/0')::text
		FROM `+ident(stateSchema, "tables")+` WHERE slot_name = $1 ORDER BY position`, slot)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: read state: %w", err)
	}
	defer rows.Close()
	var out []replica.TableState
	for rows.Next() {
		var t replica.TableState
		var include, hints *string
		var resync string
		if err := rows.Scan(&t.OID, &t.Source.Schema, &t.Source.Name, &t.Dest.Schema, &t.Dest.Name, &include, &hints, &t.Failed, &resync); err != nil {
			return nil, fmt.Errorf("postgres destination: read state: %w", err)
		}
		var err error
		if t.ResyncLSN, err = parseLSN(resync); err != nil {
			return nil, fmt.Errorf("postgres destination: read state of slot %q: resync_lsn: %w", slot, err)
		}
		if include != nil {
			if err := json.Unmarshal([]byte(*include), &t.IncludeColumns); err != nil {
				return nil, fmt.Errorf("postgres destination: read state of slot %q: include_columns: %w", slot, err)
			}
		}
		if hints != nil {
			if err := json.Unmarshal([]byte(*hints), &t.Hints); err != nil {
				return nil, fmt.Errorf("postgres destination: read state of slot %q: hints: %w", slot, err)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func saveState(ctx context.Context, q querier, st replica.State) error {
	if err := deleteState(ctx, q, st.Slot); err != nil {
		return err
	}
	schemas := st.Schemas
	if schemas == nil {
		schemas = []string{}
	}
	js, err := json.Marshal(schemas)
	if err != nil {
		return err
	}
	var last *time.Time
	if !st.LastReplicated.IsZero() {
		last = &st.LastReplicated
	}
	var cont *string
	if st.Continuous != nil {
		b, err := json.Marshal(st.Continuous)
		if err != nil {
			return err
		}
		c := string(b)
		cont = &c
	}
	if _, err := q.Exec(ctx, `INSERT INTO `+ident(stateSchema, "slots")+`
		VALUES ($1, $2, $3::pg_lsn, $4, $5, $6, $7::pg_lsn, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb)`,
		st.Slot, st.Publication, formatLSN(st.LSN), nullIfEmpty(st.Source.SystemID), nullIfZero(st.Source.Timeline), nullIfEmpty(st.Source.Database),
		formatLSN(st.SlotLSN), st.OwnsSlot, st.OwnsPublication, st.Ready, st.Publish, nullIfEmpty(st.Dataset), string(js), last, disposition(st), cont); err != nil {
		return fmt.Errorf("postgres destination: saving state: %w", err)
	}
	for i, t := range st.Tables {
		var include, hints *string
		if t.IncludeColumns != nil {
			b, err := json.Marshal(t.IncludeColumns)
			if err != nil {
				return err
			}
			s := string(b)
			include = &s
		}
		if len(t.Hints) > 0 {
			b, err := json.Marshal(t.Hints)
			if err != nil {
				return err
			}
			s := string(b)
			hints = &s
		}
		var resync *string
		if t.ResyncLSN != 0 {
			l := formatLSN(t.ResyncLSN)
			resync = &l
		}
		if _, err := q.Exec(ctx, `INSERT INTO `+ident(stateSchema, "tables")+` VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11::pg_lsn)`,
			st.Slot, i, t.OID, t.Source.Schema, t.Source.Name, t.Dest.Schema, t.Dest.Name, include, hints, nullIfEmpty(t.Failed), resync); err != nil {
			return fmt.Errorf("postgres destination: saving state: %w", err)
		}
	}
	return nil
}

func savePosition(ctx context.Context, q querier, slot string, lsn uint64, at time.Time) error {
	tag, err := q.Exec(ctx, `UPDATE `+ident(stateSchema, "slots")+` SET lsn = $2::pg_lsn, last_replicated_at = $3 WHERE slot_name = $1`,
		slot, formatLSN(lsn), at)
	if err != nil {
		return fmt.Errorf("postgres destination: saving position: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("postgres destination: saving position: the slot's state row is gone")
	}
	return nil
}

func deleteState(ctx context.Context, q querier, slot string) error {
	if _, err := q.Exec(ctx, "DELETE FROM "+ident(stateSchema, "slots")+" WHERE slot_name = $1", slot); err != nil {
		return fmt.Errorf("postgres destination: deleting state: %w", err)
	}
	if _, err := q.Exec(ctx, "DELETE FROM "+ident(stateSchema, "tables")+" WHERE slot_name = $1", slot); err != nil {
		return fmt.Errorf("postgres destination: deleting state: %w", err)
	}
	return nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullIfZero(n int32) *int32 {
	if n == 0 {
		return nil
	}
	return &n
}

func parseLSN(s string) (uint64, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}

func formatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn)) }

// disposition is the write disposition a state stores: merge unless set.
func disposition(st replica.State) string {
	if st.WriteDisposition == "" {
		return replica.DispositionMerge
	}
	return st.WriteDisposition
}
