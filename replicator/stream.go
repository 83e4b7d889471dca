package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// ReplicateOptions are replicate()'s arguments.
type ReplicateOptions struct {
	Slot        string
	Publication string
	TableOptions
	// BatchSize is how many source changes are held in memory before they
	// are written to the destination; it bounds memory.
	BatchSize int
	// FlushSlot confirms the slot up to what the destination committed.
	FlushSlot bool
	// Dataset overrides the destination schema.
	Dataset string
	// SoftDelete keeps deleted rows, marked with _pg_deleted_ts.
	SoftDelete bool
	Progress   func(string)
	// stopAt, when set, replaces the WAL end: verify drains the slot to
	// exactly the point its source snapshot shows (verify.go).
	stopAt uint64
}

// TableStats is one row of replicate()'s result.
type TableStats struct {
	Table                                string // destination table, schema-qualified
	Inserts, Updates, Deletes, Truncates int64
	StartLSN, EndLSN                     uint64
}

// MaxBatchSize caps target_batch_size so that one batch cannot ask for
// unbounded memory.
const MaxBatchSize = 1_000_000

// statusInterval is how often the stream asks the source for a keepalive,
// which is how an idle stream learns that it has reached its end.
const statusInterval = 100 * time.Millisecond

// claimAndReplicate is Replicate (observe.go), which records how it ended.
// On a slot that replicates continuously it waits for the pipeline instead
// of reading the slot.
func (r *Replicator) claimAndReplicate(ctx context.Context, o ReplicateOptions) ([]TableStats, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	p, release, err := r.claim(o.Slot)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return r.await(ctx, p, o)
	}
	defer release()
	return r.replicate(ctx, o, nil)
}

func (o *ReplicateOptions) validate() error {
	if err := validateSlot(o.Slot); err != nil {
		return err
	}
	if err := validateName("pub_name", o.Publication); err != nil {
		return err
	}
	if o.Dataset != "" {
		if err := validateName("dataset_name", o.Dataset); err != nil {
			return err
		}
	}
	if o.BatchSize < 1 || o.BatchSize > MaxBatchSize {
		return Errorf(CodeInvalidParameter, "target_batch_size must be between 1 and %d, got %d", MaxBatchSize, o.BatchSize)
	}
	return nil
}

// replicate streams a slot the caller has claimed: up to the WAL end when
// it starts, or, for a continuous pipeline p, until p is stopped.
func (r *Replicator) replicate(ctx context.Context, o ReplicateOptions, p *pipeline) ([]TableStats, error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := checkSource(ctx, conn); err != nil {
		return nil, err
	}
	state, slot, pub, err := r.checkReplicate(ctx, conn, o)
	if err != nil {
		return nil, err
	}
	repl, err := r.connectReplication(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		repl.Close(context.Background())
		r.awaitSlotReleased(conn, o.Slot)
	}()
	src, err := identify(ctx, repl)
	if err != nil {
		return nil, err
	}
	id, newID, err := checkIdentity(ctx, repl, state, src)
	if err != nil {
		return nil, err
	}
	end, err := walEnd(ctx, conn)
	if err != nil {
		return nil, err
	}
	if o.stopAt != 0 {
		end = o.stopAt
	}
	if err := checkPosition(state, slot, end); err != nil {
		return nil, err
	}
	if err := r.checkReplicaTables(ctx, conn, &state); err != nil {
		return nil, err
	}
	start := state.LSN

	err = pglogrepl.StartReplication(ctx, repl, o.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(ident(o.Publication)),
			"messages 'true'",
		},
	})
	if err != nil {
		return nil, sourceError("starting replication", err)
	}

	// The reader and the applier; see reader.go.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, chunksInFlight)
	final := make(chan uint64, 1)
	var committed atomic.Uint64
	committed.Store(start)
	rd := &reader{r: r, o: o, conn: conn, repl: repl, out: chunks, start: state.LSN, end: end,
		committed: &committed, final: final, confirmed: slot.ConfirmedLSN, ceiling: end, interval: heartbeat(ctx, conn)}
	s := &stream{
		r: r, o: o, ctx: sctx, pub: pub, dataset: state.Dataset, end: end, state: state, committed: &committed,
		relations: map[uint32]*relation{}, ensured: map[*replica.Table]bool{}, stats: map[string]*TableStats{}, batches: map[*replica.Table]*replica.Batch{},
		heap: newHeapWatch(), lastCommitAt: time.Now(), commitInterval: commitInterval,
	}
	if p != nil {
		// The end becomes a stop policy: run until p is stopped.
		rd.continuous, rd.stop, rd.end = true, p.stop, ^uint64(0)
		s.end, s.cont, s.commitInterval = 0, p, continuousCommitInterval
		p.started(start)
	}
	if newID {
		s.state.Source, s.stateDirty = id, true
	}
	s.skipping = maySkip(&s.state)
	readerDone := make(chan error, 1)
	go func() { readerDone <- rd.run(sctx) }()
	pos, err := s.run(chunks)
	s.close()
	if err == nil {
		final <- pos
		err = <-readerDone
	} else {
		close(final)
		cancel()
		if rerr := <-readerDone; err == errReaderStopped {
			err = rerr // the source failed; its error explains why
		}
	}
	if err != nil {
		if s.tx != nil {
			s.tx.Rollback(context.Background())
		}
		s.finishJobs(err)
		var tf *tableFailure
		if p != nil && ctx.Err() == nil && errors.As(err, &tf) {
			// One table's failure stops only that table.
			if merr := r.markFailed(context.WithoutCancel(ctx), o.Slot, tf); merr != nil {
				return nil, merr
			}
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeQueryCanceled,
				Message: "canceling statement due to user request",
				Detail:  fmt.Sprintf("The destination holds every change up to %s; the slot is not confirmed past it.", FormatLSN(committed.Load()))}
		}
		return nil, err
	}
	return s.results(), nil
}

// checkReplicate finds the slot's state, slot and publication, and refuses
// a call that does not match them.
func (r *Replicator) checkReplicate(ctx context.Context, conn *pgx.Conn, o ReplicateOptions) (replica.State, slotInfo, publication, error) {
	var none publication
	state, ok, err := r.dest.State(ctx, o.Slot)
	if err != nil {
		return state, slotInfo{}, none, fmt.Errorf("destination: reading state: %w", err)
	}
	slot, slotOK, err := readSlot(ctx, conn, o.Slot)
	if err != nil {
		return state, slot, none, err
	}
	if slotOK && slot.Active {
		return state, slot, none, Errorf(CodeObjectInUse, "replication slot %q is active for PID %d: another consumer is reading it", o.Slot, slot.pid())
	}
	if !ok {
		if slotOK {
			return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodeInsufficientPriv,
				Message: fmt.Sprintf("replication slot %q was not set up by pgcdc", o.Slot),
				Detail:  "Consuming it would take changes that its own consumer is waiting for.",
				Hint:    "If it is meant for pgcdc, take it over with init_replication(..., adopt => true)."}
		}
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodeUndefinedObject,
			Message: fmt.Sprintf("replication slot %q does not exist", o.Slot),
			Hint:    "Create it with init_replication()."}
	}
	if !state.Ready {
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("init_replication for slot %q did not complete", o.Slot),
			Hint:    "Run init_replication again."}
	}
	if state.Publication != o.Publication {
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("replication slot %q replicates publication %q, not %q", o.Slot, state.Publication, o.Publication)}
	}
	if o.Dataset != "" && o.Dataset != state.Dataset {
		was := "each table in a schema named after its source schema"
		if state.Dataset != "" {
			was = fmt.Sprintf("dataset_name %q", state.Dataset)
		}
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("dataset_name %q conflicts with slot %q, which was set up with %s", o.Dataset, o.Slot, was),
			Hint:    "Omit dataset_name: replicate() uses the one set by init_replication. To change it, re-create the slot with init_replication(..., reset => true)."}
	}
	if !slotOK {
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("replication slot %q no longer exists on the source, so its replica cannot be continued exactly", o.Slot),
			Hint:    "Something dropped the slot outside pgcdc. Run init_replication(..., reset => true) to start over with a new snapshot."}
	}
	if err := checkSlotUsable(ctx, conn, o.Slot, slot); err != nil {
		return state, slot, none, err
	}
	pub, ok, err := readPublication(ctx, conn, o.Publication)
	if err != nil {
		return state, slot, none, err
	}
	if !ok {
		return state, slot, none, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("publication %q does not exist", o.Publication),
			Hint:    "Something dropped it outside pgcdc. Run init_replication(..., reset => true) to start over."}
	}
	if o.TableOptions.given() {
		if err := checkStoredOptions(ctx, conn, state, o.TableOptions); err != nil {
			return state, slot, none, err
		}
	}
	return state, slot, pub, nil
}

// checkStoredOptions validates replicate()'s include_columns and columns
// exactly as init_replication does, then requires them to agree with the
// ones stored with the slot: a different column set would silently drop
// columns, and a later call would bring them back empty.
func checkStoredOptions(ctx context.Context, conn *pgx.Conn, st replica.State, o TableOptions) error {
	var tables []*sourceTable
	var states []*replica.TableState
	for i := range st.Tables {
		ts := &st.Tables[i]
		t, ok, err := describeOID(ctx, conn, ts.OID)
		if err != nil {
			return err
		}
		if ok {
			tables, states = append(tables, t), append(states, ts)
		}
	}
	given, err := o.resolve(tables, fmt.Sprintf("slot %q", st.Slot))
	if err != nil {
		return err
	}
	for i, g := range given {
		if c := g.conflict(states[i]); c != "" {
			return &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter, Message: c,
				Hint: "replicate() uses the options stored by init_replication: omit them. To change them, re-create the slot with init_replication(..., reset => true)."}
		}
	}
	return nil
}

// checkReplicaTables refuses to go on when a replica table of a source
// table that still exists is missing: recreating it would hold only the rows
// changed from now on. It also binds tables recorded without an OID.
func (r *Replicator) checkReplicaTables(ctx context.Context, conn *pgx.Conn, st *replica.State) error {
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	for _, ts := range st.Tables {
		if ts.OID == 0 {
			continue // bound by destination name when the stream names it
		}
		exists, err := tx.TableExists(ctx, ts.Dest.Schema, ts.Dest.Name)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if exists {
			continue
		}
		t, ok, err := describeOID(ctx, conn, ts.OID)
		if err != nil {
			return err
		}
		if ok {
			return missingReplica(st, ts.Dest, replica.TableName{Schema: t.Schema, Name: t.Name})
		}
	}
	return nil
}

func missingReplica(st *replica.State, dest, source replica.TableName) error {
	return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
		Message: fmt.Sprintf("replica table %s of source table %s is missing: it was dropped in the destination", dest, source),
		Detail:  "Recreating it would hold only the rows changed from now on.",
		Hint: fmt.Sprintf("Copy it again with init_replication(%s, %s, schema_name => %s, table_names => ARRAY[%s], persist_snapshots => true), then call replicate() again.",
			quoteLiteral(st.Slot), quoteLiteral(st.Publication), quoteLiteral(source.Schema), quoteLiteral(source.Name))}
}

// relation is a source relation as the stream described it.
type relation struct {
	table *replica.Table
	// cols maps each stream column to its destination column, -1 when the
	// column is left out.
	cols []int
}

// stream is the applier half of one replicate() call: it turns the
// reader's events into batches, applies them in destination transactions
// and commits them with the position they reach.
type stream struct {
	r       *Replicator
	o       ReplicateOptions
	ctx     context.Context
	src     *pgx.Conn // its own source connection, for backfills
	pub     publication
	dataset string
	end     uint64

	// state is the slot's state as the open destination transaction will
	// commit it; stateDirty says more than its position changed.
	state      replica.State
	stateDirty bool
	// committed is the position the destination holds everything up to,
	// which the reader reports to the source.
	committed *atomic.Uint64

	relations map[uint32]*relation
	ensured   map[*replica.Table]bool

	commitTime   time.Time // of the source transaction being applied
	inTx         bool      // between a Begin and its Commit
	txFinal      uint64    // the commit LSN of the transaction being applied
	batches      map[*replica.Table]*replica.Batch
	order        []*replica.Table
	pending      int   // changes held in batches
	pendingMem   int64 // bytes held in batches
	uncommited   int   // changes written to tx but not committed
	tx           replica.Tx
	lastCommit   uint64 // end LSN of the last source transaction seen
	lastCommitAt time.Time
	applied      int64
	noted        int64 // applied count last reported
	finishing    bool
	lastNote     time.Time
	// commitInterval cuts batches by time: a source transaction that ends
	// this long after the last commit is committed with what came before.
	commitInterval time.Duration
	// cont is the continuous pipeline this stream runs for, nil for a
	// replicate() call.
	cont *pipeline
	// swapped are the resyncs whose table the open transaction swaps in.
	swapped []*resyncJob
	// skipping: some table's changes may be skipped (resync.go).
	skipping bool

	stats map[string]*TableStats
	heap  *heapWatch
	obs   streamObservation // observe.go
}

// errReaderStopped means the reader ended before the stream's end: its own
// error says why.
var errReaderStopped = errors.New("the replication stream stopped")

// Commits happen at source transaction boundaries, at most this far apart
// in changes or time. target_batch_size bounds memory, not this: a
// destination commit per small batch is what made small batches slow.
const (
	commitEvery    = 100_000
	commitInterval = time.Second
	// In continuous mode batches are cut sooner, so that changes reach the
	// replica within about a second; an idle slot records the source's
	// position at most this often.
	continuousCommitInterval = 250 * time.Millisecond
	idleCommitInterval       = time.Second
	// caughtUpCommitGap spaces the commits of a continuous stream that has
	// caught up with the source, so a trickle of transactions does not
	// cost a destination commit each.
	caughtUpCommitGap = 50 * time.Millisecond
)

// heartbeat returns how often the stream must tell the source it is alive:
// a quarter of the source's wal_sender_timeout (60s by default), at most
// 10s. Long steps that do not read the stream (a backfill of a large
// table, a slow destination commit) must not outlast that timeout, or the
// source drops the connection and every retry repeats the same step.
func heartbeat(ctx context.Context, conn *pgx.Conn) time.Duration {
	interval := 10 * time.Second
	var ms int64
	if err := conn.QueryRow(ctx, "SELECT setting::int8 FROM pg_settings WHERE name = 'wal_sender_timeout'").Scan(&ms); err == nil && ms > 0 {
		if d := time.Duration(ms) * time.Millisecond / 4; d < interval {
			interval = max(d, 100*time.Millisecond)
		}
	}
	return interval
}

// run applies the reader's events until the stream's end and returns the
// position the destination then holds.
func (s *stream) run(in <-chan chunk) (uint64, error) {
	for ch := range in {
		for i := range ch.events {
			if err := s.handle(&ch.events[i]); err != nil {
				return 0, err
			}
		}
		if ch.end {
			return s.finish()
		}
		// Caught up with the reader between transactions: in continuous
		// mode, commit now rather than wait for the batch to be due.
		if s.cont != nil && !s.inTx && len(in) == 0 && s.pending+s.uncommited > 0 && time.Since(s.lastCommitAt) >= caughtUpCommitGap {
			if err := s.commit(s.lastCommit); err != nil {
				return 0, err
			}
		}
	}
	return 0, errReaderStopped
}

func (s *stream) handle(ev *event) error {
	switch ev.kind {
	case evBegin:
		s.commitTime, s.inTx, s.txFinal = ev.commit, true, ev.end
		return nil
	case evCommit:
		s.lastCommit, s.inTx = ev.end, false
		s.obs.commitTS = s.commitTime
		if s.pending+s.uncommited >= commitEvery || time.Since(s.lastCommitAt) >= s.commitInterval {
			return s.commit(s.lastCommit)
		}
		return nil
	case evKeepalive:
		// Every transaction that committed before ev.end has been handled:
		// commit what is held when it is due, and let an idle slot advance.
		s.lastCommit = max(s.lastCommit, ev.end)
		if swapped, err := s.swapReady(); err != nil || swapped {
			if err != nil {
				return err
			}
			return s.commit(s.lastCommit)
		}
		waited := s.cont.wanted() > s.committed.Load()
		due := time.Since(s.lastCommitAt) >= s.commitInterval
		if s.pending+s.uncommited > 0 && (due || waited) {
			return s.commit(s.lastCommit)
		}
		if s.lastCommit > s.committed.Load() && (waited || time.Since(s.lastCommitAt) >= idleCommitInterval) {
			return s.commit(s.lastCommit)
		}
		return nil
	case evRelation:
		return s.relation(ev.rel)
	case evTruncate:
		for _, id := range ev.relIDs {
			if skip, err := s.skip(id); skip || err != nil {
				if err != nil {
					return err
				}
				continue
			}
			rel, err := s.rel(id)
			if err != nil {
				return err
			}
			if rel.table.History {
				if err := s.closeVersions(rel.table); err != nil {
					return err
				}
				s.stat(rel.table, ev.lsn).Truncates++
				continue
			}
			// Changes before the truncate are gone with it.
			if b, ok := s.batches[rel.table]; ok {
				s.pending -= b.Len()
				s.pendingMem -= b.Bytes
				s.count(b)
				delete(s.batches, rel.table)
			}
			if err := s.openTx(); err != nil {
				return err
			}
			if err := s.tx.Truncate(s.ctx, rel.table); err != nil {
				return &tableFailure{oid: id, err: fmt.Errorf("destination: truncating %s: %w", rel.table.Qualified(), err)}
			}
			s.stat(rel.table, ev.lsn).Truncates++
		}
		return nil
	}
	if skip, err := s.skip(ev.relID); skip || err != nil {
		return err
	}
	rel, err := s.rel(ev.relID)
	if err != nil {
		return err
	}
	b := s.batch(rel.table)
	b.CommitLSN = s.txFinal
	switch ev.kind {
	case evInsert:
		b.Insert(rel.row(ev.new), ev.lsn, s.commitTime)
	case evUpdate:
		var old *replica.Row
		if ev.old != nil {
			o := rel.row(ev.old)
			old = &o
		}
		b.Update(old, rel.row(ev.new), ev.lsn, s.commitTime)
	case evDelete:
		if rel.table.AppendOnly {
			return Errorf(CodePrerequisite, "a delete on %s cannot be replicated: the table has no key", rel.table.QualifiedSource())
		}
		b.Delete(rel.row(ev.old), ev.lsn, s.commitTime, s.o.SoftDelete)
	}
	s.pending++
	b.Bytes += ev.size
	s.pendingMem += ev.size
	if s.pending >= s.o.BatchSize || s.pendingMem >= s.r.BatchBytes {
		return s.spill()
	}
	return nil
}

// close releases the applier's own source connection.
func (s *stream) close() {
	if s.src != nil {
		s.src.Close(context.Background())
	}
}

func (s *stream) rel(id uint32) (*relation, error) {
	rel, ok := s.relations[id]
	if !ok {
		return nil, fmt.Errorf("source: change for relation %d arrived before its Relation message", id)
	}
	if !s.ensured[rel.table] {
		if err := s.openTx(); err != nil {
			return nil, err
		}
		if err := s.place(rel.table); err != nil {
			return nil, err
		}
		stale, err := s.tx.EnsureTable(s.ctx, rel.table)
		if err != nil {
			if ft := failedTable(err); ft != nil {
				return nil, failure(ft, err) // staged changes of another table failed
			}
			return nil, &tableFailure{oid: id, err: fmt.Errorf("destination: %s: %w", rel.table.Qualified(), err)}
		}
		s.ensured[rel.table] = true
		if len(stale) > 0 {
			s.backfill(rel.table, stale)
		}
	}
	return rel, nil
}

// place makes sure the destination table a relation's changes go to is the
// slot's own, in the transaction that applies them: it follows a source
// table renamed or moved to another schema (the relation OID stays), admits
// a table that joined a schema the slot publishes whole, and refuses to
// write where the replica lost a table or another table holds the name.
func (s *stream) place(t *replica.Table) error {
	name, source := t.TableName(), replica.TableName{Schema: t.SourceSchema, Name: t.SourceName}
	ts := s.state.Table(t.OID)
	if ts == nil {
		return s.admit(t)
	}
	if ts.Dest == name {
		exists, err := s.tx.TableExists(s.ctx, name.Schema, name.Name)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if !exists {
			return missingReplica(&s.state, name, source)
		}
		if ts.Source != source {
			ts.Source, s.stateDirty = source, true
		}
		return nil
	}
	// Renamed or moved at the source.
	from := ts.Dest
	if holder := s.state.TableByDest(name); holder != nil {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("source table %s (was %s) cannot follow its rename: replica table %s still holds source table %s (OID %d)", source, ts.Source, name, holder.Source, holder.OID),
			Hint:    fmt.Sprintf("Rename or drop replica table %s, then call replicate() again.", name)}
	}
	exists, err := s.tx.TableExists(s.ctx, from.Schema, from.Name)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if !exists {
		return missingReplica(&s.state, from, source)
	}
	if s.dataset == "" && from.Schema != name.Schema {
		if err := s.r.checkSchemaName(name.Schema, "destination schema"); err != nil {
			return err
		}
	}
	if err := s.tx.RenameTable(s.ctx, from, name); err != nil {
		return fmt.Errorf("destination: following the rename of %s to %s: %w", ts.Source, source, err)
	}
	s.r.notify(s.o.Progress, fmt.Sprintf("source table %s is now %s: replica table %s renamed to %s", ts.Source, source, from, name))
	ts.Source, ts.Dest, s.stateDirty = source, name, true
	return nil
}

// admit records a table that the slot's state does not hold yet. Only a
// table in a schema the slot publishes whole may join on its own: its
// every row reaches the stream. Any other table was added to the
// publication without a snapshot.
func (s *stream) admit(t *replica.Table) error {
	name, source := t.TableName(), replica.TableName{Schema: t.SourceSchema, Name: t.SourceName}
	if !slices.Contains(s.state.Schemas, t.SourceSchema) {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("publication %q publishes table %s, which slot %q's replica does not hold", s.o.Publication, source, s.o.Slot),
			Detail:  "It was added to the publication outside init_replication, or by an init_replication that did not complete, so its rows were never copied.",
			Hint: fmt.Sprintf("Copy it with init_replication(%s, %s, schema_name => %s, table_names => ARRAY[%s], persist_snapshots => true).",
				quoteLiteral(s.o.Slot), quoteLiteral(s.o.Publication), quoteLiteral(source.Schema), quoteLiteral(source.Name))}
	}
	if holder := s.state.TableByDest(name); holder != nil {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("new source table %s cannot be replicated: replica table %s holds source table %s (OID %d)", source, name, holder.Source, holder.OID),
			Hint:    fmt.Sprintf("If %s was dropped or renamed at the source, rename or drop replica table %s, then call replicate() again.", holder.Source, name)}
	}
	exists, err := s.tx.TableExists(s.ctx, name.Schema, name.Name)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if exists {
		return &pgconn.PgError{Severity: "ERROR", Code: CodeDuplicateTable,
			Message: fmt.Sprintf("new source table %s cannot be replicated: destination table %s exists but was not created by pgcdc for slot %q", source, name, s.o.Slot),
			Hint:    "Rename or drop the destination table, then call replicate() again."}
	}
	if s.dataset == "" {
		if err := s.r.checkSchemaName(name.Schema, "destination schema"); err != nil {
			return err
		}
	}
	s.state.Tables = append(s.state.Tables, replica.TableState{OID: t.OID, Source: source, Dest: name})
	s.stateDirty = true
	return nil
}

// relation handles a Relation message, as the reader described it: the
// first sight of a table in this stream, or its new shape after a schema
// change. The table's options and destination come from the slot's state,
// by OID.
func (s *stream) relation(src *sourceRelation) error {
	m := src.msg
	// Tables recorded without an OID are bound by destination name.
	dest := replica.TableName{Schema: m.Namespace, Name: m.RelationName}
	if s.dataset != "" {
		dest.Schema = s.dataset
	}
	if s.state.Table(m.RelationID) == nil {
		if ts := s.state.TableByDest(dest); ts != nil && ts.OID == 0 {
			ts.OID, ts.Source, s.stateDirty = m.RelationID, replica.TableName{Schema: m.Namespace, Name: m.RelationName}, true
		}
	}
	// Options are the table's, by OID: a renamed table keeps them.
	var include []string
	var hints map[string]replica.TypeHint
	if ts := s.state.Table(m.RelationID); ts != nil {
		include, hints = ts.IncludeColumns, ts.Hints
	}
	shaped := shapeColumns(src.columns, include, hints)
	t := s.r.destTable(m.RelationID, m.Namespace, m.RelationName, shaped, s.dataset, s.pub, src.fullRow, s.state.WriteDisposition)
	t.Types = src.types
	if err := checkHistoryKey(s.state, t); err != nil {
		return err
	}
	rel := &relation{table: t, cols: make([]int, len(m.Columns))}
	for i, c := range m.Columns {
		rel.cols[i] = t.ColumnIndex(c.Name)
	}
	prev := s.relations[m.RelationID]
	if prev != nil && prev.table.TableName() == t.TableName() && prev.table.SameShape(t) {
		rel.table = prev.table
		s.relations[m.RelationID] = rel
		return nil
	}
	// The shape or name changed: changes held for the old one go out
	// first, in stream order. The destination table itself is created,
	// renamed or altered at the relation's first change, because pgoutput
	// also describes relations it never sends changes for (a partition
	// published through its root).
	if prev != nil {
		if b, ok := s.batches[prev.table]; ok {
			if err := s.openTx(); err != nil {
				return err
			}
			if err := s.apply(prev.table, b); err != nil {
				return err
			}
		}
	}
	s.relations[m.RelationID] = rel
	return nil
}

// row converts a pgoutput tuple to a destination row.
func (rel *relation) row(td []tupleCol) replica.Row {
	n := len(rel.table.Columns)
	r := replica.Row{Values: make([][]byte, n)}
	for i, c := range td {
		if i >= len(rel.cols) || rel.cols[i] < 0 {
			continue
		}
		j := rel.cols[i]
		switch c.kind {
		case 't', 'b':
			r.Values[j] = c.data // never nil: an empty value is an empty slice
		case 'u':
			if r.Unchanged == nil {
				r.Unchanged = make([]bool, n)
			}
			r.Unchanged[j] = true
		}
	}
	return r
}

func (s *stream) batch(t *replica.Table) *replica.Batch {
	b, ok := s.batches[t]
	if !ok {
		b = replica.NewBatch(t)
		s.batches[t] = b
		s.order = append(s.order, t)
	}
	return b
}

func (s *stream) stat(t *replica.Table, lsn uint64) *TableStats {
	st, ok := s.stats[t.Qualified()]
	if !ok {
		st = &TableStats{Table: t.Qualified(), StartLSN: lsn}
		s.stats[t.Qualified()] = st
	}
	if lsn > st.EndLSN {
		st.EndLSN = lsn
	}
	if lsn < st.StartLSN {
		st.StartLSN = lsn
	}
	return st
}

func (s *stream) count(b *replica.Batch) {
	if b.Len() == 0 {
		return
	}
	st := s.stat(b.Table, b.MinLSN)
	s.stat(b.Table, b.MaxLSN)
	st.Inserts += b.Inserts
	st.Updates += b.Updates
	st.Deletes += b.Deletes
}

func (s *stream) openTx() error {
	if s.tx != nil {
		return nil
	}
	tx, err := s.r.dest.Begin(s.ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	s.tx = tx
	return nil
}

func (s *stream) apply(t *replica.Table, b *replica.Batch) error {
	if err := s.tx.Apply(s.ctx, t, b); err != nil {
		return failure(t, err)
	}
	s.count(b)
	s.pending -= b.Len()
	s.pendingMem -= b.Bytes
	s.uncommited += b.Len()
	s.applied += int64(b.Len())
	delete(s.batches, t)
	return nil
}

// failure attributes a destination's failure to the table whose changes
// caused it: the table the error names (a destination may write a table's
// changes later than Apply, at Commit for one), else t.
func failure(t *replica.Table, err error) error {
	if ft := failedTable(err); ft != nil {
		t = ft
	}
	return &tableFailure{oid: t.OID, err: fmt.Errorf("destination: applying changes to %s: %w", t.Qualified(), err)}
}

// failedTable is the table a destination's error names, or nil.
func failedTable(err error) *replica.Table {
	var te *replica.TableError
	if errors.As(err, &te) {
		return te.Table
	}
	return nil
}

// spill writes every held batch into the open destination transaction, so
// memory stays bounded inside a large source transaction. Nothing is
// committed until a source transaction ends.
func (s *stream) spill() error {
	if err := s.openTx(); err != nil {
		return err
	}
	for _, t := range s.order {
		if b, ok := s.batches[t]; ok {
			if err := s.apply(t, b); err != nil {
				return err
			}
		}
	}
	s.order = s.order[:0]
	s.heap.observe()
	if s.o.Progress != nil && !s.finishing && s.applied > s.noted && time.Since(s.lastNote) > time.Second {
		s.lastNote, s.noted = time.Now(), s.applied
		s.o.Progress(fmt.Sprintf("replicate %s: %d changes applied so far", s.o.Slot, s.applied))
	}
	return nil
}

// commit makes everything applied so far durable together with lsn, then
// lets the slot move up to it.
func (s *stream) commit(lsn uint64) error {
	start := time.Now()
	if err := s.spill(); err != nil {
		return err
	}
	st := s.state
	st.LSN = lsn
	st.LastReplicated = time.Now().UTC()
	var err error
	if s.stateDirty {
		err = s.tx.SaveState(s.ctx, st)
	} else {
		err = s.tx.SavePosition(s.ctx, st.Slot, lsn, st.LastReplicated)
	}
	if err != nil {
		return fmt.Errorf("destination: saving state: %w", err)
	}
	if err := s.tx.Commit(s.ctx); err != nil {
		s.tx = nil
		if ft := failedTable(err); ft != nil {
			return failure(ft, err)
		}
		return fmt.Errorf("destination: commit: %w", err)
	}
	s.tx = nil
	s.state, s.stateDirty = st, false
	s.committed.Store(lsn)
	s.uncommited = 0
	s.lastCommitAt = time.Now()
	s.r.observeCommit(s, time.Since(start))
	s.cont.committedAt(lsn, s.stats)
	for _, j := range s.swapped {
		j.finish(nil)
	}
	s.swapped = nil
	return nil
}

// finish commits the last batch at the end position; the reader then
// confirms the slot up to it.
func (s *stream) finish() (uint64, error) {
	final := max(s.end, s.lastCommit, s.committed.Load())
	s.finishing = true // the summary below replaces a last progress note
	if err := s.commit(final); err != nil {
		return 0, err
	}
	if s.o.Progress != nil && s.applied > 0 {
		s.o.Progress(fmt.Sprintf("replicate %s: %d changes applied, at %s", s.o.Slot, s.applied, FormatLSN(final)))
	}
	s.r.log.Debug().Str("slot", s.o.Slot).Uint64("go_heap_peak_bytes", s.heap.max()).Int64("batch_bytes", s.r.BatchBytes).Msg("replicate memory")
	return final, nil
}

func (s *stream) results() []TableStats {
	out := make([]TableStats, 0, len(s.stats))
	for _, st := range s.stats {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// walEnd is the fixed end of a replicate() call: the WAL position after
// every transaction that committed before the call started.
//
// It is the insert position, not pg_current_wal_lsn(): that is the write
// position, and with synchronous_commit = off a commit that has already
// returned to its client can sit in WAL buffers beyond it. Decoding waits for
// the flush, which the WAL writer does within wal_writer_delay.
//
// When the last record ends exactly at a page boundary, the insert position
// points just past the next page's header, where no record can end; the
// decoder reports the boundary itself. So a position exactly at the end of
// its page's header is moved back to the page start, which is where the
// last record ended. Only the exact header size counts: a record that
// crosses a page boundary ends a few bytes past the next header (its last
// bytes follow it), and that end is real.
func walEnd(ctx context.Context, conn *pgx.Conn) (uint64, error) {
	var text string
	var block, segment int64
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::int8,
		(SELECT setting::int8 FROM pg_settings WHERE name = 'wal_segment_size')`).Scan(&text, &block, &segment); err != nil {
		return 0, sourceError("reading WAL position", err)
	}
	end, err := parseLSN(text)
	if err != nil {
		return 0, err
	}
	return pageStartIfEmpty(end, uint64(block), uint64(segment)), nil
}

// pageStartIfEmpty returns the start of lsn's page when lsn is exactly the
// end of that page's header, else lsn. The first page of a WAL segment has
// the long header (SizeOfXLogLongPHD), every other page the short one
// (SizeOfXLogShortPHD).
func pageStartIfEmpty(lsn, block, segment uint64) uint64 {
	const shortPageHeader, longPageHeader = 24, 40
	if block == 0 || segment == 0 {
		return lsn
	}
	off := lsn % block
	page := lsn - off
	header := uint64(shortPageHeader)
	if page%segment == 0 {
		header = longPageHeader
	}
	if off == header {
		return page
	}
	return lsn
}

// backfill copies columns the source rewrote without WAL (ALTER COLUMN TYPE,
// ADD COLUMN with a volatile default) from the source table as it is now.
// Later changes in the stream still apply on top, so the replica is exact
// again once the call has reached its end; rows changed after that end show
// their newer value in these columns until the next call. A failure is
// reported, not fatal: the stream must not stall on a table that has since
// changed again.
func (s *stream) backfill(t *replica.Table, stale []string) {
	keys := t.KeyIndexes()
	var cols []int
	for _, name := range stale {
		if i := t.ColumnIndex(name); i >= 0 {
			cols = append(cols, i)
		}
	}
	warn := func(err error) {
		msg := fmt.Sprintf("columns %v of %s were rewritten by the source and could not be backfilled: %v", stale, t.QualifiedSource(), err)
		s.r.log.Warn().Msg(msg)
		if s.o.Progress != nil {
			s.o.Progress("WARNING: " + msg)
		}
	}
	if len(keys) == 0 || t.AppendOnly || len(cols) == 0 {
		warn(fmt.Errorf("the table has no key to match rows by"))
		return
	}
	view := &replica.Table{SourceSchema: t.SourceSchema, SourceName: t.SourceName, Schema: t.Schema, Name: t.Name}
	for _, i := range append(append([]int{}, keys...), cols...) {
		view.Columns = append(view.Columns, t.Columns[i])
	}
	if s.src == nil {
		conn, err := s.r.connect(s.ctx)
		if err != nil {
			warn(err)
			return
		}
		s.src = conn
	}
	var kind byte
	if err := s.src.QueryRow(s.ctx, "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
		t.SourceSchema, t.SourceName).Scan(&kind); err != nil {
		warn(sourceError("reading the table's kind", err))
		return
	}
	flush := func(rows []replica.Row) error { return s.tx.Backfill(s.ctx, t, cols, rows) }
	if _, err := copyRows(s.ctx, s.src, view, kind, s.r.BatchBytes, flush); err != nil {
		warn(err)
		return
	}
	s.r.notify(s.o.Progress, fmt.Sprintf("backfilled %v of %s from the source after a rewrite", stale, t.QualifiedSource()))
}

// awaitSlotReleased waits, briefly, until the source's walsender has let go
// of the slot. Closing the replication connection returns before the
// walsender exits, and a caller who gets a result (or a cancellation) and
// calls replicate() again at once must not find the slot still active.
func (r *Replicator) awaitSlotReleased(conn *pgx.Conn, slot string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn.IsClosed() {
		// A cancelled call can take its catalog connection down with it.
		c, err := r.connect(ctx)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		conn = c
	}
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if err != nil || !active {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
