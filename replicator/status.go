package replicator

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// SlotStatus is one row of replication_status().
type SlotStatus struct {
	Slot           string
	Publication    string // from the destination state; empty when unknown
	Active         bool
	ConfirmedLSN   *uint64
	CurrentLSN     uint64
	LagBytes       *int64
	WALStatus      string
	LastReplicated *time.Time
	Tables         []string
}

// Status reports every pgoutput slot of the source database, or only slot
// when it is not empty.
func (r *Replicator) Status(ctx context.Context, slot string) ([]SlotStatus, error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	q := `SELECT slot_name::text, active, confirmed_flush_lsn::text, pg_current_wal_insert_lsn()::text, COALESCE(wal_status, '')
		FROM pg_replication_slots WHERE plugin = 'pgoutput' AND database = current_database()`
	args := []any{}
	if slot != "" {
		q += " AND slot_name = $1"
		args = append(args, slot)
	}
	rows, err := conn.Query(ctx, q+" ORDER BY slot_name", args...)
	if err != nil {
		return nil, sourceError("reading replication slots", err)
	}
	var out []SlotStatus
	for rows.Next() {
		var s SlotStatus
		var confirmed *string
		var current string
		if err := rows.Scan(&s.Slot, &s.Active, &confirmed, &current, &s.WALStatus); err != nil {
			rows.Close()
			return nil, sourceError("reading replication slots", err)
		}
		if s.CurrentLSN, err = parseLSN(current); err != nil {
			rows.Close()
			return nil, err
		}
		if confirmed != nil {
			c, err := parseLSN(*confirmed)
			if err != nil {
				rows.Close()
				return nil, err
			}
			lag := int64(s.CurrentLSN) - int64(c)
			s.ConfirmedLSN, s.LagBytes = &c, &lag
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, sourceError("reading replication slots", err)
	}
	if slot != "" && len(out) == 0 {
		return nil, Errorf(CodeUndefinedObject, "replication slot %q does not exist", slot)
	}
	for i := range out {
		st, ok, err := r.dest.State(ctx, out[i].Slot)
		if err != nil {
			return nil, fmt.Errorf("destination: %w", err)
		}
		if ok {
			out[i].Publication = st.Publication
			out[i].Tables = st.Tables
			if !st.LastReplicated.IsZero() {
				t := st.LastReplicated
				out[i].LastReplicated = &t
			}
		}
	}
	return out, nil
}

// Drop removes a slot, its publication and its destination state, and
// with dropTables the destination tables too. It returns the tables dropped.
func (r *Replicator) Drop(ctx context.Context, slot, pub string, dropTables bool) ([]string, error) {
	if err := validateSlot(slot); err != nil {
		return nil, err
	}
	if err := validateName("pub_name", pub); err != nil {
		return nil, err
	}
	conn, done, err := r.open(ctx, slot, false)
	if err != nil {
		return nil, err
	}
	defer done()
	_, slotOK, err := readSlot(ctx, conn, slot)
	if err != nil {
		return nil, err
	}
	_, pubOK, err := readPublication(ctx, conn, pub)
	if err != nil {
		return nil, err
	}
	st, stateOK, err := r.dest.State(ctx, slot)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if !slotOK && !pubOK && !stateOK {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeUndefinedObject,
			Message: fmt.Sprintf("neither replication slot %q nor publication %q exists", slot, pub)}
	}
	if err := r.drop(ctx, conn, slot, pub, dropTables); err != nil {
		return nil, err
	}
	var dropped []string
	if dropTables && stateOK {
		dropped = st.Tables
	}
	return dropped, nil
}
