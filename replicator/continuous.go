package replicator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Continuous mode: start_replication runs a slot's stream in the
// background, with the same reader and applier as replicate(), but with a
// stop policy instead of a fixed end. Each running slot is a pipeline in the
// Replicator's registry; the registry replaces the busy map for it, so no
// replicate() or init_replication can read the slot while it runs. A
// replicate() call on a running slot waits for the pipeline instead.
//
// Running and paused slots are recorded in the destination's state
// (State.Continuous), so that ResumeAll restarts them after a restart. A
// stream that fails is retried with capped exponential backoff; the last
// error stays visible in ContinuousStatus.

// Backoff between retries of a failed continuous stream.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// pipeline is one slot replicating continuously.
type pipeline struct {
	r *Replicator
	o ReplicateOptions
	// njobs counts jobs, so that the applier looks them up only when
	// there are some.
	njobs atomic.Int32
	// want is the highest position a waiting replicate() asked for: the
	// applier commits at once, instead of when the batch is due.
	want atomic.Uint64

	mu     sync.Mutex
	paused bool
	stop   chan struct{} // closed to drain the stream
	done   chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc
	// committed is the position the destination holds, and totals what
	// was applied since the pipeline started, by destination table; base
	// is totals when the current stream started.
	committed    uint64
	totals, base map[string]TableStats
	changed      chan struct{} // closed and replaced at each commit
	failures     int
	// jobs are the resync_table calls in progress, by relation OID.
	jobs      map[uint32]*resyncJob
	lastErr   error
	lastErrAt time.Time
	retrying  bool
}

// ContinuousStatus is what a continuous slot reports about itself.
type ContinuousStatus struct {
	Slot        string
	Publication string
	// State is "running", "retrying" (the stream failed and waits for its
	// next attempt) or "paused".
	State        string
	CommittedLSN uint64
	// LastError is the last error of the stream, kept after a successful
	// retry; LastErrorAt is when it happened.
	LastError   string
	LastErrorAt time.Time
	Failures    int
}

func newPipeline(r *Replicator, o ReplicateOptions) *pipeline {
	o.Progress = nil
	o.TableOptions = TableOptions{} // the slot's stored options apply
	done := make(chan struct{})
	close(done)
	return &pipeline{r: r, o: o, totals: map[string]TableStats{}, changed: make(chan struct{}), done: done, stop: make(chan struct{}),
		jobs: map[uint32]*resyncJob{}}
}

// wanted is the position a waiting replicate() needs; 0 without one.
func (p *pipeline) wanted() uint64 {
	if p == nil {
		return 0
	}
	return p.want.Load()
}

func (p *pipeline) ask(lsn uint64) {
	for {
		w := p.want.Load()
		if w >= lsn || p.want.CompareAndSwap(w, lsn) {
			return
		}
	}
}

// started records that a stream begins at start.
func (p *pipeline) started(start uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base = maps.Clone(p.totals)
	p.committed = max(p.committed, start)
}

// committedAt records a destination commit at lsn, with the stream's
// statistics so far.
func (p *pipeline) committedAt(lsn uint64, stats map[string]*TableStats) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = lsn
	for name, st := range stats {
		t := p.base[name]
		t.Table = st.Table
		if t.StartLSN == 0 {
			t.StartLSN = st.StartLSN
		}
		t.EndLSN = max(t.EndLSN, st.EndLSN)
		t.Inserts += st.Inserts
		t.Updates += st.Updates
		t.Deletes += st.Deletes
		t.Truncates += st.Truncates
		p.totals[name] = t
	}
	p.retrying = false
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures++
	p.lastErr, p.lastErrAt, p.retrying = err, time.Now().UTC(), true
	close(p.changed)
	p.changed = make(chan struct{})
}

// launch starts the pipeline's goroutine.
func (p *pipeline) launch() {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.paused = false
	p.stop, p.done, p.cancel = make(chan struct{}), make(chan struct{}), cancel
	stop, done := p.stop, p.done
	p.mu.Unlock()
	go p.run(ctx, stop, done)
}

// run streams until stopped, retrying failures with backoff.
func (p *pipeline) run(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	log := p.r.log.With().Str("slot", p.o.Slot).Logger()
	log.Info().Msg("continuous replication started")
	backoff := minBackoff
	for {
		began := time.Now()
		p.mu.Lock()
		from := p.committed
		p.mu.Unlock()
		_, err := p.r.replicate(ctx, p.o, p)
		if stopping(stop) || ctx.Err() != nil {
			log.Info().Msg("continuous replication stopped")
			return
		}
		if err == nil {
			err = errors.New("internal error: the stream ended without being stopped")
		}
		if errors.Is(err, errSwapRestart) {
			continue
		}
		p.fail(err)
		p.mu.Lock()
		progressed := p.committed > from
		p.mu.Unlock()
		if progressed || time.Since(began) > maxBackoff {
			backoff = minBackoff
		}
		var tf *tableFailure
		if errors.As(err, &tf) {
			// The table is marked failed: the others go on at once.
			log.Warn().Err(err).Msg("a table failed; continuing without it")
			continue
		}
		log.Warn().Err(err).Dur("retry_in", backoff).Msg("continuous replication failed")
		select {
		case <-time.After(backoff):
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// halt drains the stream: it ends at the next source transaction boundary
// and commits what it holds. When ctx ends first, the stream is cancelled;
// what it had not committed is rolled back and read again later.
func (p *pipeline) halt(ctx context.Context) {
	p.mu.Lock()
	stop, done, cancel := p.stop, p.done, p.cancel
	p.mu.Unlock()
	select {
	case <-stop:
	default:
		close(stop)
	}
	select {
	case <-done:
	case <-ctx.Done():
		if cancel != nil {
			cancel()
		}
		<-done
	}
	if cancel != nil {
		cancel()
	}
}

func (p *pipeline) status() ContinuousStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ContinuousStatus{Slot: p.o.Slot, Publication: p.o.Publication, State: "running", CommittedLSN: p.committed,
		LastErrorAt: p.lastErrAt, Failures: p.failures}
	if p.lastErr != nil {
		st.LastError = p.lastErr.Error()
	}
	switch {
	case p.paused:
		st.State = "paused"
	case p.retrying:
		st.State = "retrying"
	}
	return st
}

// claim reserves slot for one call. When the slot replicates continuously
// it returns its pipeline instead, and reserves nothing.
func (r *Replicator) claim(slot string) (*pipeline, func(), error) {
	r.mu.Lock()
	if p := r.pipes[slot]; p != nil {
		r.mu.Unlock()
		return p, nil, nil
	}
	r.mu.Unlock()
	release, err := r.acquire(slot)
	return nil, release, err
}

func (r *Replicator) pipe(slot string) *pipeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pipes[slot]
}

// Start makes slot replicate continuously in the background, with o's
// options, until Stop. It checks the slot as replicate() would first, and
// records the slot as running in the destination, so a restarted pgcdc
// resumes it (ResumeAll).
func (r *Replicator) Start(ctx context.Context, o ReplicateOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	if p := r.pipe(o.Slot); p != nil {
		if p.status().State == "paused" {
			return &pgconn.PgError{Severity: "ERROR", Code: CodeObjectInUse,
				Message: fmt.Sprintf("slot %q already replicates continuously, and is paused", o.Slot),
				Hint:    fmt.Sprintf("Resume it with resume_replication(%s).", quoteLiteral(o.Slot))}
		}
		return Errorf(CodeObjectInUse, "slot %q already replicates continuously", o.Slot)
	}
	release, err := r.acquire(o.Slot)
	if err != nil {
		return err
	}
	defer release()
	conn, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := checkSource(ctx, conn); err != nil {
		return err
	}
	if _, _, _, err := r.checkReplicate(ctx, conn, o); err != nil {
		return err
	}
	if err := r.saveContinuous(ctx, o.Slot, &replica.Continuous{BatchSize: o.BatchSize, FlushSlot: o.FlushSlot, SoftDelete: o.SoftDelete}); err != nil {
		return err
	}
	p := newPipeline(r, o)
	r.mu.Lock()
	r.pipes[o.Slot] = p
	r.mu.Unlock()
	p.launch()
	return nil
}

// Stop ends the continuous replication of slot: the stream drains to a
// source transaction boundary and commits, and the slot is recorded as
// driven by replicate() calls again. It returns the slot's final status.
func (r *Replicator) Stop(ctx context.Context, slot string) (ContinuousStatus, error) {
	p, err := r.running(slot)
	if err != nil {
		return ContinuousStatus{}, err
	}
	p.halt(ctx)
	if err := r.saveContinuous(context.WithoutCancel(ctx), slot, nil); err != nil {
		return ContinuousStatus{}, err
	}
	r.mu.Lock()
	delete(r.pipes, slot)
	r.mu.Unlock()
	st := p.status()
	st.State = "stopped"
	return st, nil
}

// Pause stops reading the slot but keeps it registered as continuous: it
// stays paused across restarts until Resume, and replicate() refuses it.
func (r *Replicator) Pause(ctx context.Context, slot string) (ContinuousStatus, error) {
	p, err := r.running(slot)
	if err != nil {
		return ContinuousStatus{}, err
	}
	if p.status().State == "paused" {
		return p.status(), nil
	}
	p.halt(ctx)
	if err := r.saveContinuous(context.WithoutCancel(ctx), slot, &replica.Continuous{Paused: true, BatchSize: p.o.BatchSize, FlushSlot: p.o.FlushSlot, SoftDelete: p.o.SoftDelete}); err != nil {
		return ContinuousStatus{}, err
	}
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	return p.status(), nil
}

// Resume restarts a paused slot.
func (r *Replicator) Resume(ctx context.Context, slot string) (ContinuousStatus, error) {
	p, err := r.running(slot)
	if err != nil {
		return ContinuousStatus{}, err
	}
	if p.status().State != "paused" {
		return p.status(), nil
	}
	if err := r.saveContinuous(ctx, slot, &replica.Continuous{BatchSize: p.o.BatchSize, FlushSlot: p.o.FlushSlot, SoftDelete: p.o.SoftDelete}); err != nil {
		return ContinuousStatus{}, err
	}
	p.launch()
	return p.status(), nil
}

func (r *Replicator) running(slot string) (*pipeline, error) {
	if err := validateSlot(slot); err != nil {
		return nil, err
	}
	p := r.pipe(slot)
	if p == nil {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("slot %q does not replicate continuously", slot),
			Hint:    "Start it with start_replication()."}
	}
	return p, nil
}

// saveContinuous records c as the slot's continuous setting.
func (r *Replicator) saveContinuous(ctx context.Context, slot string, c *replica.Continuous) error {
	st, ok, err := r.dest.State(ctx, slot)
	if err != nil {
		return fmt.Errorf("destination: reading state: %w", err)
	}
	if !ok {
		return Errorf(CodeUndefinedObject, "replication slot %q has no state in the destination", slot)
	}
	st.Continuous = c
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
	return nil
}

// ResumeAll restarts the slots the destination records as replicating
// continuously, and registers the paused ones. Errors of a slot's stream
// are retried in the background; only reading the state can fail here.
func (r *Replicator) ResumeAll(ctx context.Context) ([]string, error) {
	states, err := r.dest.States(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: reading state: %w", err)
	}
	var slots []string
	for _, st := range states {
		c := st.Continuous
		if c == nil {
			continue
		}
		r.mu.Lock()
		if r.pipes[st.Slot] != nil || r.busy[st.Slot] {
			r.mu.Unlock()
			continue
		}
		p := newPipeline(r, ReplicateOptions{Slot: st.Slot, Publication: st.Publication, BatchSize: max(c.BatchSize, 1),
			FlushSlot: c.FlushSlot, SoftDelete: c.SoftDelete})
		p.paused = c.Paused
		r.pipes[st.Slot] = p
		r.mu.Unlock()
		if !c.Paused {
			p.launch()
		}
		slots = append(slots, st.Slot)
	}
	return slots, nil
}

// Shutdown drains every continuous stream, within ctx; streams still
// running when ctx ends are cancelled. Their slots stay recorded as
// running, so the next pgcdc resumes them.
func (r *Replicator) Shutdown(ctx context.Context) {
	r.mu.Lock()
	pipes := make([]*pipeline, 0, len(r.pipes))
	for _, p := range r.pipes {
		pipes = append(pipes, p)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.halt(ctx)
		}()
	}
	wg.Wait()
}

// ContinuousStatus reports the slots that replicate continuously, or only
// slot when it is not empty.
func (r *Replicator) ContinuousStatus(slot string) []ContinuousStatus {
	r.mu.Lock()
	pipes := make([]*pipeline, 0, len(r.pipes))
	for name, p := range r.pipes {
		if slot == "" || name == slot {
			pipes = append(pipes, p)
		}
	}
	r.mu.Unlock()
	out := make([]ContinuousStatus, len(pipes))
	for i, p := range pipes {
		out[i] = p.status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}

// await is replicate() on a continuous slot: it waits until the pipeline
// has committed everything up to the source's WAL position when the call
// started, and returns what was applied meanwhile.
func (r *Replicator) await(ctx context.Context, p *pipeline, o ReplicateOptions) ([]TableStats, error) {
	if o.Publication != p.o.Publication {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("replication slot %q replicates publication %q, not %q", o.Slot, p.o.Publication, o.Publication)}
	}
	if p.status().State == "paused" {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("replication of slot %q is paused", o.Slot),
			Hint:    fmt.Sprintf("Resume it with resume_replication(%s).", quoteLiteral(o.Slot))}
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	target, err := walEnd(ctx, conn)
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	before, failures := maps.Clone(p.totals), p.failures
	p.mu.Unlock()
	p.ask(target)
	r.notify(o.Progress, fmt.Sprintf("replicate %s: slot replicates continuously; waiting for it to reach %s", o.Slot, FormatLSN(target)))
	for {
		p.mu.Lock()
		committed, changed, done := p.committed, p.changed, p.done
		paused, lastErr, failed := p.paused, p.lastErr, p.failures > failures
		after := maps.Clone(p.totals)
		p.mu.Unlock()
		if committed >= target {
			return statsSince(before, after), nil
		}
		if failed {
			return nil, lastErr
		}
		if paused {
			return nil, Errorf(CodePrerequisite, "replication of slot %q was paused before it reached %s", o.Slot, FormatLSN(target))
		}
		select {
		case <-changed:
		case <-done:
			if r.pipe(o.Slot) != p || stoppedFor(p) {
				return nil, Errorf(CodePrerequisite, "continuous replication of slot %q stopped before it reached %s", o.Slot, FormatLSN(target))
			}
			// Resumed with a new goroutine: wait on that one.
		case <-ctx.Done():
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeQueryCanceled,
				Message: "canceling statement due to user request",
				Detail:  fmt.Sprintf("Slot %q keeps replicating continuously; it had reached %s.", o.Slot, FormatLSN(committed))}
		}
	}
}

// stoppedFor reports whether p's current goroutine has ended.
func stoppedFor(p *pipeline) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// statsSince is what was applied between two totals.
func statsSince(before, after map[string]TableStats) []TableStats {
	var out []TableStats
	for name, a := range after {
		b := before[name]
		d := TableStats{Table: a.Table, Inserts: a.Inserts - b.Inserts, Updates: a.Updates - b.Updates,
			Deletes: a.Deletes - b.Deletes, Truncates: a.Truncates - b.Truncates, StartLSN: a.StartLSN, EndLSN: a.EndLSN}
		if d.Inserts+d.Updates+d.Deletes+d.Truncates == 0 {
			continue
		}
		if b.EndLSN != 0 {
			d.StartLSN = b.EndLSN
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}
