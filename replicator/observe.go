package replicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Observer receives what the engine measures, as it happens: a metrics
// exporter implements it (internal/metrics), so that the engine knows
// nothing of HTTP or Prometheus. Calls must be cheap and must not block.
type Observer interface {
	// ChangesApplied counts changes committed to the destination table
	// (schema.table of the replica); op is insert, update, delete or
	// truncate.
	ChangesApplied(slot, table, op string, n int64)
	// BatchCommitted reports one destination commit of the change stream:
	// how long writing and committing it took, and how many changes it held.
	BatchCommitted(slot string, d time.Duration, changes int64)
	// SnapshotProgress reports rows copied into a table by a snapshot, with
	// the planner's estimate of the total; done marks the last report.
	SnapshotProgress(slot, table string, rows int64, estimate float64, done bool)
	// Error counts a failed call, by SQLSTATE (XX000 when it has none).
	Error(slot, sqlstate string)
}

// SetObserver installs o. Set it before the first call.
func (r *Replicator) SetObserver(o Observer) { r.activity().observer = o }

// activityLog is what this process saw of each slot since it started:
// replication_status() shows it next to what the source and the
// destination store.
type activityLog struct {
	observer Observer
	mu       sync.Mutex
	slots    map[string]*slotActivity
}

// slotActivity is one slot's recent history in this process.
type slotActivity struct {
	// lastCommitTS is the source commit time of the last transaction
	// committed to the destination.
	lastCommitTS time.Time
	// caughtUpAt is when the last successful replicate() started: the
	// replica holds everything the source committed before it.
	caughtUpAt time.Time
	// lastError is the last call's error; nil once a call succeeds.
	lastError error
	tables    map[string]*tableActivity // by replica table, schema.table
}

// tableActivity is one table's history in this process.
type tableActivity struct {
	inserts, updates, deletes, truncates int64
	snapshotting                         bool
	snapshotRows                         int64
	snapshotEstimate                     float64
}

// activity returns r's log.
func (r *Replicator) activity() *activityLog { return r.act }

func newActivityLog() *activityLog { return &activityLog{slots: map[string]*slotActivity{}} }

func (a *activityLog) slot(name string) *slotActivity {
	s, ok := a.slots[name]
	if !ok {
		s = &slotActivity{tables: map[string]*tableActivity{}}
		a.slots[name] = s
	}
	return s
}

func (s *slotActivity) table(name string) *tableActivity {
	t, ok := s.tables[name]
	if !ok {
		t = &tableActivity{}
		s.tables[name] = t
	}
	return t
}

// Replicate consumes the slot from the replica's position up to the
// source's WAL position when the call starts, merges every change into the
// destination, and confirms the slot up to what the destination committed.
//
// Before it reads a change it checks that the stored state belongs to this
// source and slot, and that the options of the call agree with the ones the
// slot was set up with.
//
// On a slot that replicates continuously it waits until the background
// replication has applied everything up to the source's WAL position when
// the call started, and returns what was applied meanwhile.
func (r *Replicator) Replicate(ctx context.Context, o ReplicateOptions) ([]TableStats, error) {
	start := time.Now()
	stats, err := r.claimAndReplicate(ctx, o)
	err = explainLostSlot(o.Slot, err)
	a := r.activity()
	a.mu.Lock()
	s := a.slot(o.Slot)
	if err == nil {
		s.lastError = nil
		if o.stopAt == 0 {
			s.caughtUpAt = start
		}
	} else if failsSlot(err) {
		s.lastError = err
	}
	a.mu.Unlock()
	if err != nil && a.observer != nil {
		a.observer.Error(o.Slot, sqlstate(err))
	}
	return stats, err
}

// streamObservation is what a stream has measured but not yet reported.
type streamObservation struct {
	commitTS time.Time             // of the last source transaction seen
	reported map[string]TableStats // counts already reported, by table
}

// observeCommit reports what a destination commit of s made durable.
func (r *Replicator) observeCommit(s *stream, d time.Duration) {
	a := r.activity()
	a.mu.Lock()
	sa := a.slot(s.o.Slot)
	if !s.obs.commitTS.IsZero() {
		sa.lastCommitTS = s.obs.commitTS
	}
	if s.obs.reported == nil {
		s.obs.reported = map[string]TableStats{}
	}
	type delta struct {
		table, op string
		n         int64
	}
	var deltas []delta
	var changes int64
	for name, st := range s.stats {
		was := s.obs.reported[name]
		ta := sa.table(name)
		for _, c := range []struct {
			op       string
			now, was int64
			into     *int64
		}{{"insert", st.Inserts, was.Inserts, &ta.inserts}, {"update", st.Updates, was.Updates, &ta.updates},
			{"delete", st.Deletes, was.Deletes, &ta.deletes}, {"truncate", st.Truncates, was.Truncates, &ta.truncates}} {
			if n := c.now - c.was; n > 0 {
				*c.into += n
				changes += n
				deltas = append(deltas, delta{name, c.op, n})
			}
		}
		s.obs.reported[name] = *st
	}
	a.mu.Unlock()
	if o := a.observer; o != nil {
		for _, dl := range deltas {
			o.ChangesApplied(s.o.Slot, dl.table, dl.op, dl.n)
		}
		o.BatchCommitted(s.o.Slot, d, changes)
	}
}

// observeSnapshot returns the function copyTable reports a table's copied
// rows to.
func (r *Replicator) observeSnapshot(slot, table string, estimate float64) func(rows int64, done bool) {
	return func(rows int64, done bool) {
		a := r.activity()
		a.mu.Lock()
		t := a.slot(slot).table(table)
		t.snapshotting, t.snapshotRows, t.snapshotEstimate = !done, rows, estimate
		a.mu.Unlock()
		if a.observer != nil {
			a.observer.SnapshotProgress(slot, table, rows, estimate, done)
		}
	}
}

// failsSlot tells the errors that say something about the slot from the
// ones about the call: bad arguments (classes 22 and 42), a cancellation,
// or another call holding the slot do not make it failed.
func failsSlot(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	code := sqlstate(err)
	return !strings.HasPrefix(code, "22") && !strings.HasPrefix(code, "42") && code != CodeQueryCanceled && code != CodeObjectInUse
}

// sqlstate is err's SQLSTATE, XX000 (internal_error) when it has none.
func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return CodeQueryCanceled
	}
	return "XX000"
}

// explainLostSlot adds the way out to the source's error for a slot that
// lost its WAL while it was being read ("can no longer get changes from
// replication slot"): checkSlotUsable catches the slots lost before.
func explainLostSlot(slot string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != CodePrerequisite || !strings.Contains(pe.Message, "can no longer get changes") {
		return err
	}
	c := *pe
	c.Hint = fmt.Sprintf("Replication slot %q has lost required WAL: its replica cannot continue exactly. Start over with init_replication(..., reset => true), which takes a new snapshot.", slot)
	return &c
}
