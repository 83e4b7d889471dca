package replicator

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
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
	// Tables are the destination tables, nil when pgcdc has no state for
	// the slot.
	Tables []replica.TableName

	// State is the slot's state: see statusStates.
	State string
	// LagSeconds is how far the replica is behind in time: 0 when the slot
	// has nothing waiting, otherwise the age of the latest point the
	// replica is complete up to (the start of the last replicate() that
	// caught up, or the commit time of the last transaction applied);
	// nil when unknown.
	LagSeconds *float64
	// LastCommitAt is the source commit time of the last transaction this
	// process applied; nil when it applied none.
	LastCommitAt *time.Time
	// LastError is the last call's error, "" once a call succeeds.
	LastError string
	// Changes applied since pgcdc started, by operation.
	Inserts, Updates, Deletes, Truncates int64
	// TableDetail is one entry per replicated table.
	TableDetail []TableStatus
}

// TableStatus is a table's row of replication_status().
type TableStatus struct {
	Table  replica.TableName // in the destination
	Source replica.TableName
	State  string
	// Changes applied since pgcdc started, by operation.
	Inserts, Updates, Deletes, Truncates int64
	// SnapshotRows and SnapshotEstimate are the rows copied by the running
	// (or last) snapshot of this process, and the planner's estimate.
	SnapshotRows     int64
	SnapshotEstimate float64
	LastError        string
}

// Slot and table states, as statusStates derives them.
const (
	StateSnapshotting = "snapshotting" // init_replication is copying it
	StateReplicating  = "replicating"  // a call is streaming changes into it now
	StateStreaming    = "streaming"    // ready: replicate() applies its changes
	StateFailed       = "failed"       // the last call failed, or the slot lost WAL; a table whose changes failed
	StatePaused       = "paused"       // pause_replication stopped a continuous slot
	StateRetrying     = "retrying"     // a continuous slot failed and waits for its next attempt
	StateCatchingUp   = "catching up"  // a resynced table whose snapshot is ahead of the slot's position
	StateUnmanaged    = "unmanaged"    // a slot pgcdc has no state for
)

// statusStates fills in the state of a slot and its tables from what
// exists: the stored state, the source's slot, and what this process saw.
// It is the one place states are derived, so that a persisted per-table
// state can replace the derivation here.
func (r *Replicator) statusStates(s *SlotStatus, st *replica.State, known bool) {
	p := r.pipe(s.Slot)
	var cont ContinuousStatus
	if p != nil {
		cont = p.status()
	}
	a := r.activity()
	a.mu.Lock()
	defer a.mu.Unlock()
	sa := a.slots[s.Slot]
	r.mu.Lock()
	busy := r.busy[s.Slot]
	r.mu.Unlock()
	switch {
	case !known:
		s.State = StateUnmanaged
	case s.WALStatus == "lost":
		s.State = StateFailed
		s.LastError = fmt.Sprintf("replication slot %q has lost required WAL: recover with init_replication(..., reset => true)", s.Slot)
	case !st.Ready:
		s.State = StateSnapshotting
	case p != nil && cont.State == "paused":
		s.State = StatePaused
	case p != nil && cont.State == "retrying":
		s.State = StateRetrying
	case p != nil:
		s.State = StateReplicating
	case sa != nil && sa.lastError != nil:
		s.State = StateFailed
	case busy:
		s.State = StateReplicating
	default:
		s.State = StateStreaming
	}
	if cont.LastError != "" && s.LastError == "" {
		s.LastError = cont.LastError
	}
	if sa != nil {
		if sa.lastError != nil && s.LastError == "" {
			s.LastError = sa.lastError.Error()
		}
		if !sa.lastCommitTS.IsZero() {
			t := sa.lastCommitTS
			s.LastCommitAt = &t
		}
	}
	// The replica holds everything the source committed until the later
	// of: the start of the last replicate() that caught up, and the commit
	// time of the last transaction applied (commits apply in order).
	var complete time.Time
	if sa != nil {
		complete = sa.caughtUpAt
		if sa.lastCommitTS.After(complete) {
			complete = sa.lastCommitTS
		}
	}
	if complete.IsZero() && s.LastReplicated != nil {
		complete = *s.LastReplicated // stored by an earlier process
	}
	if s.LagBytes != nil && (*s.LagBytes <= 0 || !complete.IsZero()) {
		lag := 0.0
		if *s.LagBytes > 0 {
			lag = max(time.Since(complete).Seconds(), 0)
		}
		s.LagSeconds = &lag
	}
	if !known {
		return
	}
	for _, ts := range st.Tables {
		t := TableStatus{Table: ts.Dest, Source: ts.Source, State: s.State}
		if t.State == StateReplicating {
			t.State = StateStreaming
		}
		if sa != nil {
			if ta := sa.tables[ts.Dest.String()]; ta != nil {
				t.Inserts, t.Updates, t.Deletes, t.Truncates = ta.inserts, ta.updates, ta.deletes, ta.truncates
				t.SnapshotRows, t.SnapshotEstimate = ta.snapshotRows, ta.snapshotEstimate
				if ta.snapshotting {
					t.State = StateSnapshotting
				}
			}
		}
		switch {
		case ts.Failed != "":
			t.State, t.LastError = StateFailed, ts.Failed
		case p.job(ts.OID) != nil:
			t.State = StateSnapshotting
		case ts.ResyncLSN > st.LSN && t.State != StatePaused:
			t.State = StateCatchingUp
		case t.State == StateFailed:
			t.LastError = s.LastError
		case t.State == StateRetrying:
			t.State = StateStreaming
		}
		s.Inserts += t.Inserts
		s.Updates += t.Updates
		s.Deletes += t.Deletes
		s.Truncates += t.Truncates
		s.TableDetail = append(s.TableDetail, t)
	}
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
			out[i].Tables = make([]replica.TableName, len(st.Tables))
			for j, t := range st.Tables {
				out[i].Tables[j] = t.Dest
			}
			if !st.LastReplicated.IsZero() {
				t := st.LastReplicated
				out[i].LastReplicated = &t
			}
		}
		r.statusStates(&out[i], &st, ok)
	}
	return out, nil
}

// DropOptions are drop_replication's arguments.
type DropOptions struct {
	Slot        string
	Publication string
	// DropTables drops the destination tables too.
	DropTables bool
	Progress   func(string)
}

// Drop removes a slot, its publication and its destination state, and
// with DropTables the destination tables too. It returns the tables it
// dropped. It touches only what pgcdc created: a slot or publication it has
// no state for is refused, and a publication it only read is left alone.
func (r *Replicator) Drop(ctx context.Context, o DropOptions) ([]replica.TableName, error) {
	if err := validateSlot(o.Slot); err != nil {
		return nil, err
	}
	if err := validateName("pub_name", o.Publication); err != nil {
		return nil, err
	}
	conn, done, err := r.open(ctx, o.Slot, false)
	if err != nil {
		return nil, err
	}
	defer done()
	slot, slotOK, err := readSlot(ctx, conn, o.Slot)
	if err != nil {
		return nil, err
	}
	_, pubOK, err := readPublication(ctx, conn, o.Publication)
	if err != nil {
		return nil, err
	}
	st, stateOK, err := r.dest.State(ctx, o.Slot)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if !stateOK {
		switch {
		case slotOK:
			return nil, notCreated("replication slot", o.Slot)
		case pubOK:
			return nil, notCreated("publication", o.Publication)
		}
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeUndefinedObject,
			Message: fmt.Sprintf("neither replication slot %q nor publication %q exists", o.Slot, o.Publication)}
	}
	if st.Publication != o.Publication {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInsufficientPriv,
			Message: fmt.Sprintf("replication slot %q replicates publication %q, not %q; pgcdc will not drop a publication it did not create", o.Slot, st.Publication, o.Publication),
			Hint:    fmt.Sprintf("Call drop_replication('%s', '%s').", o.Slot, st.Publication)}
	}
	sameSource := true
	if st.Source.Known() {
		repl, err := r.connectReplication(ctx)
		if err != nil {
			return nil, err
		}
		src, err := identify(ctx, repl)
		if err == nil {
			_, _, err = checkIdentity(ctx, repl, st, src)
			sameSource = err == nil
			err = nil
		}
		repl.Close(context.Background())
		if err != nil {
			return nil, err
		}
	}
	if !sameSource {
		r.notify(o.Progress, fmt.Sprintf("the replication state of slot %s was made from another source: its slot and publication on this source are not pgcdc's and are left alone", o.Slot))
	} else {
		if slotOK && st.OwnsSlot {
			if slot.Active {
				return nil, Errorf(CodeObjectInUse, "replication slot %q is active for PID %d; stop its consumer first", o.Slot, slot.pid())
			}
			if err := dropSlot(ctx, conn, o.Slot); err != nil {
				return nil, err
			}
		}
		if pubOK {
			if st.OwnsPublication {
				if _, err := conn.Exec(ctx, "DROP PUBLICATION "+ident(o.Publication)); err != nil {
					return nil, sourceError("dropping publication", err)
				}
			} else {
				r.notify(o.Progress, fmt.Sprintf("publication %s was not created by pgcdc and is left alone", o.Publication))
			}
		}
	}
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	var dropped []replica.TableName
	if o.DropTables {
		for _, t := range st.Tables {
			ok, err := tx.DropTable(ctx, t.Dest.Schema, t.Dest.Name)
			if err != nil {
				return nil, fmt.Errorf("destination: dropping %s: %w", t.Dest, err)
			}
			if ok {
				dropped = append(dropped, t.Dest)
			}
		}
	}
	if err := tx.DeleteState(ctx, o.Slot); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("destination: commit: %w", err)
	}
	return dropped, nil
}

func notCreated(kind, name string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: CodeInsufficientPriv,
		Message: fmt.Sprintf("%s %q was not created by pgcdc", kind, name),
		Detail:  "pgcdc has no replication state for it, and drops only what it created.",
		Hint:    "Drop it on the source yourself if it is really unused."}
}
