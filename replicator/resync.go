package replicator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Per-table states and resync.
//
// A table whose changes fail to apply in continuous mode is marked failed
// in the state (TableState.Failed), in a destination transaction of its
// own; the stream restarts from the stored position and skips the table's
// changes from then on, so the other tables go on. resync_table brings it
// back, or rebuilds any table:
//
//  1. a temporary slot exports a snapshot at its consistent point S;
//  2. the table is copied in that snapshot into a staging table next to
//     the replica table, while the stream goes on;
//  3. the staging table replaces the replica table in one destination
//     transaction that also records S as the table's ResyncLSN: changes of
//     transactions that commit before S are in the snapshot and are
//     skipped, later ones apply on top.
//
// For a continuous slot the swap is the applier's: at a transaction
// boundary once the copy is done, or, when the stream meets a change of
// the table that commits at or after S before the copy is done, right
// there, after waiting for the copy: until the swap the old replica table
// takes every change, and from it the new one does. For a slot driven by
// replicate() calls nothing reads the slot meanwhile, and the swap follows
// the copy at once. Either way the swap commits with the state, so a crash
// before it leaves the old table (and a staging table the next resync
// drops), and a crash after it leaves the new one with its ResyncLSN.

// resyncSeq numbers the temporary slots of resyncs.
var resyncSeq atomic.Int64

// errSwapRestart asks for the stream to start over from its last commit,
// so that a resync's staging table is visible to its transaction.
var errSwapRestart = errors.New("resync: restarting the stream to swap the table in")

// tableFailure is an error that concerns one table's changes only.
type tableFailure struct {
	oid uint32
	err error
}

func (f *tableFailure) Error() string { return f.err.Error() }
func (f *tableFailure) Unwrap() error { return f.err }

// skip reports whether the change of relation id in the transaction being
// applied must not reach the destination: its table failed, or a resync's
// snapshot holds it already. On a continuous slot it also performs the
// swap of a resync that the change has to wait for.
func (s *stream) skip(id uint32) (bool, error) {
	if !s.skipping && s.cont.jobCount() == 0 {
		return false, nil // the common case, without a scan of the tables
	}
	ts := s.state.Table(id)
	if ts == nil {
		return false, nil
	}
	if ts.Failed != "" {
		return true, nil
	}
	if ts.ResyncLSN != 0 && s.txFinal < ts.ResyncLSN {
		return true, nil
	}
	j := s.cont.job(id)
	if j == nil {
		return false, nil
	}
	lsn, err := j.position(s.ctx)
	if err != nil {
		return false, err
	}
	if lsn == 0 || s.txFinal < lsn {
		// No snapshot after all, or one that holds this change: the old
		// table takes it until the swap.
		return false, nil
	}
	s.r.log.Info().Str("slot", s.o.Slot).Str("table", ts.Dest.String()).Msg("resync: the stream waits for the copy to finish")
	if err := j.copied(s.ctx); err != nil {
		return false, nil // the resync failed; its caller hears why
	}
	return false, s.swap(j)
}

// swapReady swaps in every resync whose copy is done. It runs between
// source transactions.
func (s *stream) swapReady() (bool, error) {
	jobs := s.cont.readyJobs()
	for _, j := range jobs {
		if err := s.swap(j); err != nil {
			return false, err
		}
	}
	return len(jobs) > 0, nil
}

// swap replaces the replica table of j with its staging table in the open
// destination transaction.
func (s *stream) swap(j *resyncJob) error {
	ts := s.state.Table(j.oid)
	if ts == nil {
		s.cont.dropJob(j)
		j.finish(fmt.Errorf("table %s left the slot during its resync", j.staging))
		return nil
	}
	if err := s.openTx(); err != nil {
		return err
	}
	// A destination with snapshot isolation for its catalog (DuckDB) does
	// not show a transaction the staging table committed after it began:
	// the stream then starts over from its last commit, in a transaction
	// that sees it.
	if ok, err := s.tx.TableExists(s.ctx, j.staging.Schema, j.staging.Name); err != nil {
		return fmt.Errorf("destination: %w", err)
	} else if !ok {
		return errSwapRestart
	}
	// The job stays registered until its swap has succeeded: a swap that
	// fails (DuckDB refuses a catalog change that races another
	// transaction's) fails this stream, and the pipeline's next attempt
	// swaps it in again. Dropped before, the waiting resync_table() would
	// never hear of it.
	if err := swapTable(s.ctx, s.tx, ts, j); err != nil {
		return err
	}
	s.cont.dropJob(j)
	// Changes held for the old table are all in the snapshot.
	for t, b := range s.batches {
		if t.OID == j.oid {
			s.pending -= b.Len()
			s.pendingMem -= b.Bytes
			delete(s.batches, t)
		}
	}
	for t := range s.ensured {
		if t.OID == j.oid {
			delete(s.ensured, t) // brought in line with the stream's shape at its next change
		}
	}
	s.stateDirty, s.skipping = true, true
	s.swapped = append(s.swapped, j)
	return nil
}

// maySkip reports whether any table of st can have changes to skip after
// st's position: a failed table, or one resynced from a later snapshot.
func maySkip(st *replica.State) bool {
	for _, ts := range st.Tables {
		if ts.Failed != "" || ts.ResyncLSN > st.LSN {
			return true
		}
	}
	return false
}

func swapTable(ctx context.Context, tx replica.Tx, ts *replica.TableState, j *resyncJob) error {
	if _, err := tx.DropTable(ctx, ts.Dest.Schema, ts.Dest.Name); err != nil {
		return fmt.Errorf("destination: resync of %s: %w", ts.Dest, err)
	}
	if err := tx.RenameTable(ctx, j.staging, ts.Dest); err != nil {
		return fmt.Errorf("destination: resync of %s: %w", ts.Dest, err)
	}
	ts.ResyncLSN, ts.Failed = j.lsn, ""
	return nil
}

// resyncJob is one resync_table on a continuous slot, shared by the call
// that copies the table and the applier that swaps it in.
type resyncJob struct {
	oid     uint32
	staging replica.TableName

	mu       sync.Mutex
	lsn      uint64        // S, once known
	known    chan struct{} // closed when lsn is set or the resync failed
	ready    chan struct{} // closed when the copy is done or failed
	copyErr  error
	isReady  bool
	done     chan struct{} // closed when the swap committed or failed
	finalErr error
	finished bool
}

func newResyncJob(oid uint32, staging replica.TableName) *resyncJob {
	return &resyncJob{oid: oid, staging: staging, known: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{})}
}

func (j *resyncJob) setPosition(lsn uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.known:
	default:
		j.lsn = lsn
		close(j.known)
	}
}

// position waits until the snapshot's position is known; 0 means the
// resync failed before it had one.
func (j *resyncJob) position(ctx context.Context) (uint64, error) {
	select {
	case <-j.known:
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.lsn, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (j *resyncJob) setCopied(err error) {
	j.setPosition(0) // no-op once known
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.ready:
	default:
		j.copyErr, j.isReady = err, err == nil
		close(j.ready)
	}
}

// copied waits for the copy; its error says the resync failed.
func (j *resyncJob) copied(ctx context.Context) error {
	select {
	case <-j.ready:
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.copyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *resyncJob) finish(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.finished {
		j.finished, j.finalErr = true, err
		close(j.done)
	}
}

// jobCount is the number of resyncs in progress.
func (p *pipeline) jobCount() int32 {
	if p == nil {
		return 0
	}
	return p.njobs.Load()
}

// job returns the resync of relation oid in progress, nil without one.
func (p *pipeline) job(oid uint32) *resyncJob {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jobs[oid]
}

// readyJobs are the resyncs whose copy is done, ready to swap in.
func (p *pipeline) readyJobs() []*resyncJob {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*resyncJob
	for _, j := range p.jobs {
		j.mu.Lock()
		if j.isReady {
			out = append(out, j)
		}
		j.mu.Unlock()
	}
	return out
}

func (p *pipeline) dropJob(j *resyncJob) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jobs[j.oid] == j {
		delete(p.jobs, j.oid)
		p.njobs.Add(-1)
	}
}

// finishJobs fails the resyncs a failed stream had swapped in but not
// committed.
func (s *stream) finishJobs(err error) {
	for _, j := range s.swapped {
		j.finish(fmt.Errorf("the stream failed before the resync committed: %w", err))
	}
	s.swapped = nil
}

// ResyncResult is resync_table()'s result.
type ResyncResult struct {
	Table        replica.TableName // destination table
	SnapshotRows int64
	LSN          uint64 // the snapshot's position
}

// ResyncTable takes a new snapshot of one table of slot and rebuilds its
// replica from it, exactly: see the comment at the top of this file.
func (r *Replicator) ResyncTable(ctx context.Context, slot, table string, progress func(string)) (ResyncResult, error) {
	var res ResyncResult
	if err := validateSlot(slot); err != nil {
		return res, err
	}
	p, release, err := r.claim(slot)
	if err != nil {
		return res, err
	}
	if p != nil {
		if p.status().State == "paused" {
			return res, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
				Message: fmt.Sprintf("replication of slot %q is paused", slot),
				Hint:    fmt.Sprintf("Resume it with resume_replication(%s) first, or stop it.", quoteLiteral(slot))}
		}
	} else {
		defer release()
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())
	st, ok, err := r.dest.State(ctx, slot)
	if err != nil {
		return res, fmt.Errorf("destination: reading state: %w", err)
	}
	if !ok {
		return res, &pgconn.PgError{Severity: "ERROR", Code: CodeUndefinedObject,
			Message: fmt.Sprintf("replication slot %q does not exist", slot), Hint: "Create it with init_replication()."}
	}
	ts, err := findTable(&st, table)
	if err != nil {
		return res, err
	}
	src, ok, err := describeOID(ctx, conn, ts.OID)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, Errorf(CodeUndefinedTable, "source table %s of slot %q no longer exists", ts.Source, slot)
	}
	pub, ok, err := readPublication(ctx, conn, st.Publication)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, Errorf(CodePrerequisite, "publication %q does not exist", st.Publication)
	}
	t := r.destTable(src.OID, src.Schema, src.Name, shapeColumns(src.Columns, ts.IncludeColumns, ts.Hints), st.Dataset, pub, src.FullRow, st.WriteDisposition)
	t.Types = src.Types
	if t.History {
		// A snapshot holds each row's current version only: rebuilding from
		// it would throw the table's history away.
		return res, &pgconn.PgError{Severity: "ERROR", Code: CodeFeatureNotSupp,
			Message: fmt.Sprintf("resync_table cannot rebuild %s: slot %q keeps history (write_disposition 'scd2'), which a new snapshot does not hold", ts.Dest, slot),
			Hint:    "Recreate the slot with init_replication(..., reset => true) to start a new history."}
	}
	if err := r.dest.CheckTable(t); err != nil {
		return res, Errorf(CodeInvalidParameter, "%v", err)
	}
	// The replica table keeps its name (a rename the stream has not
	// followed yet is followed after the swap).
	staging := replica.TableName{Schema: ts.Dest.Schema, Name: fmt.Sprintf("_pgcdc_resync_%d", ts.OID)}
	stagingTable := *t
	stagingTable.Schema, stagingTable.Name = staging.Schema, staging.Name
	res.Table = ts.Dest

	var j *resyncJob
	if p != nil {
		j = newResyncJob(ts.OID, staging)
		p.mu.Lock()
		if p.jobs[ts.OID] != nil {
			p.mu.Unlock()
			return res, Errorf(CodeObjectInUse, "table %s of slot %q is being resynced by another call", ts.Dest, slot)
		}
		p.jobs[ts.OID] = j
		p.njobs.Add(1)
		p.mu.Unlock()
		defer func() {
			p.dropJob(j)
			j.setCopied(errors.New("resync ended"))
		}()
	}

	// 1. A snapshot at a known position, from a temporary slot.
	repl, err := r.connectReplication(ctx)
	if err != nil {
		return res, err
	}
	defer repl.Close(context.Background())
	// Temporary: the source drops it when the connection closes, crash or not.
	name := fmt.Sprintf("pgcdc_resync_%d_%d", os.Getpid(), resyncSeq.Add(1))
	created, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return res, sourceError("creating a temporary slot for the resync's snapshot", err)
	}
	lsn, err := parseLSN(created.ConsistentPoint)
	if err != nil {
		return res, err
	}
	res.LSN = lsn
	if j != nil {
		j.setPosition(lsn)
	}
	r.notify(progress, fmt.Sprintf("resync %s: snapshot at %s", ts.Dest, FormatLSN(lsn)))

	// 2. The copy, into the staging table, in a destination transaction
	// of its own.
	rows, err := r.copyStaging(ctx, &stagingTable, src, created.SnapshotName, lsn, progress, r.observeSnapshot(slot, ts.Dest.String(), src.Rows))
	if err != nil {
		return res, err
	}
	res.SnapshotRows = rows

	// 3. The swap.
	if j == nil {
		tx, err := r.dest.Begin(ctx)
		if err != nil {
			return res, fmt.Errorf("destination: %w", err)
		}
		defer tx.Rollback(context.Background())
		if err := swapTable(ctx, tx, st.Table(ts.OID), &resyncJob{oid: ts.OID, staging: staging, lsn: lsn}); err != nil {
			return res, err
		}
		if err := tx.SaveState(ctx, st); err != nil {
			return res, fmt.Errorf("destination: saving state: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("destination: commit: %w", err)
		}
	} else {
		j.setCopied(nil)
		select {
		case <-j.done:
			if j.finalErr != nil {
				return res, j.finalErr
			}
		case <-ctx.Done():
			return res, &pgconn.PgError{Severity: "ERROR", Code: CodeQueryCanceled, Message: "canceling statement due to user request",
				Detail: "The replica table was not replaced; the stream goes on with it."}
		}
	}
	r.notify(progress, fmt.Sprintf("resync %s: %d rows, changes from %s on apply on top", ts.Dest, rows, FormatLSN(lsn)))
	return res, nil
}

// copyStaging creates the staging table afresh and copies the source table
// into it inside the exported snapshot.
func (r *Replicator) copyStaging(ctx context.Context, t *replica.Table, src *sourceTable, snapshot string, lsn uint64, progress func(string), observe func(rows int64, done bool)) (int64, error) {
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.DropTable(ctx, t.Schema, t.Name); err != nil { // left by a resync that did not finish
		return 0, fmt.Errorf("destination: %w", err)
	}
	if _, err := tx.EnsureTable(ctx, t); err != nil {
		return 0, fmt.Errorf("destination: creating %s: %w", t.Qualified(), err)
	}
	sconn, err := r.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer sconn.Close(context.Background())
	if _, err := sconn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return 0, sourceError("starting snapshot transaction", err)
	}
	if _, err := sconn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
		return 0, sourceError("importing the resync's snapshot", err)
	}
	n, err := copyTable(ctx, sconn, tx, t, src.Kind, src.Rows, lsn, r.BatchBytes, newHeapWatch(), progress, observe)
	if err != nil {
		return 0, err
	}
	if _, err := sconn.Exec(ctx, "COMMIT"); err != nil {
		return 0, sourceError("ending snapshot transaction", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("destination: commit: %w", err)
	}
	return n, nil
}

// findTable finds a slot's table by its source name, "schema.name" or a
// name that is unique in the slot.
func findTable(st *replica.State, name string) (*replica.TableState, error) {
	var found []*replica.TableState
	for i := range st.Tables {
		ts := &st.Tables[i]
		if ts.Source.String() == name {
			return ts, nil
		}
		if ts.Source.Name == name {
			found = append(found, ts)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, Errorf(CodeUndefinedTable, "slot %q does not replicate a table %q", st.Slot, name)
	}
	return nil, Errorf(CodeInvalidParameter, "table name %q is ambiguous in slot %q: qualify it with its schema", name, st.Slot)
}

// markFailed records in the destination that a table's changes failed.
func (r *Replicator) markFailed(ctx context.Context, slot string, f *tableFailure) error {
	st, ok, err := r.dest.State(ctx, slot)
	if err != nil || !ok {
		return fmt.Errorf("destination: reading state: %w", err)
	}
	ts := st.Table(f.oid)
	if ts == nil {
		return f.err
	}
	ts.Failed = f.err.Error()
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	if err := tx.SaveState(ctx, st); err != nil {
		return fmt.Errorf("destination: saving state: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("destination: commit: %w", err)
	}
	r.log.Error().Str("slot", slot).Str("table", ts.Dest.String()).Str("error", ts.Failed).
		Msg("table failed: its changes are skipped until resync_table")
	return nil
}
