package main_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

const faultSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(14,2) NOT NULL, note text, doc text);
CREATE TABLE events (id bigserial PRIMARY KEY, account int, kind text, payload jsonb, at timestamptz DEFAULT now());
CREATE TABLE tags (a int, b text);
ALTER TABLE tags REPLICA IDENTITY FULL;
CREATE TABLE audit (id bigserial, account int, note text);
INSERT INTO accounts SELECT g, g * 1.5, 'n' || g, CASE WHEN g % 50 = 0 THEN ` + bigText + ` END FROM generate_series(1, 20000) g;
INSERT INTO events (account, kind, payload) SELECT g % 100, 'seed', jsonb_build_object('g', g, 'pad', repeat('p', 200)) FROM generate_series(1, 300000) g;
INSERT INTO tags SELECT g, 't' || g FROM generate_series(1, 200) g;`

var faultTables = []struct{ src, rep string }{
	{"SELECT id, balance::text, note, md5(doc) FROM accounts ORDER BY id",
		"SELECT id, CAST(balance AS VARCHAR), note, md5(doc) FROM accounts ORDER BY id"},
	{`SELECT id, account, kind, payload::text, "at" FROM events ORDER BY id`,
		`SELECT id, account, kind, CAST(payload AS VARCHAR), "at" FROM events ORDER BY id`},
	{"SELECT a, b FROM tags ORDER BY a, b", "SELECT a, b FROM tags ORDER BY a, b"},
	// Append-only: a transaction applied twice would show as duplicates.
	{"SELECT id, account, note FROM audit ORDER BY id", "SELECT id, account, note FROM audit ORDER BY id"},
}

// workload changes the source in random transactions until stop is closed.
func workload(ctx context.Context, t *testing.T, dsn string, seed int64, stop <-chan struct{}, txs *atomic.Int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewSource(seed))
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		for i, n := 0, 1+rng.Intn(40); i < n; i++ {
			id := 1 + rng.Intn(25000)
			var q string
			var args []any
			switch rng.Intn(8) {
			case 7:
				q, args = `INSERT INTO audit (account, note) VALUES ($1, 'a')`, []any{id}
			case 0:
				q, args = `INSERT INTO accounts VALUES ($1, $2, 'ins') ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`, []any{id, rng.Intn(100000)}
			case 1:
				q, args = `UPDATE accounts SET balance = balance + 1, note = note || '+' WHERE id = $1`, []any{id}
			case 2:
				q, args = `DELETE FROM accounts WHERE id = $1`, []any{id}
			case 3:
				q, args = `INSERT INTO events (account, kind, payload) VALUES ($1, 'w', jsonb_build_object('r', $2::int))`, []any{id % 100, rng.Intn(1000)}
			case 4:
				q, args = `UPDATE events SET kind = 'u' WHERE id = $1`, []any{id}
			case 5:
				q, args = `UPDATE tags SET b = b || '.' WHERE a = $1`, []any{id % 200}
			default:
				q, args = `UPDATE accounts SET id = id + 100000 WHERE id = $1 AND id < 30000
					AND NOT EXISTS (SELECT 1 FROM accounts WHERE id = $1 + 100000)`, []any{id}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				tx.Rollback(ctx)
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		txs.Add(1)
	}
}

func tableHash(ctx context.Context, t *testing.T, conn *pgx.Conn, q string) (string, int) {
	rows := rowsOf(ctx, t, conn, q)
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:16], len(rows)
}

// assertEqual compares every table by an ordered hash of all its columns.
func assertEqual(ctx context.Context, t *testing.T, src, rep *pgx.Conn) {
	t.Helper()
	for _, q := range faultTables {
		sh, sn := tableHash(ctx, t, src, q.src)
		rh, rn := tableHash(ctx, t, rep, q.rep)
		if sh != rh {
			sameRows(ctx, t, src, rep, q.src, q.rep) // shows the difference
			t.Fatalf("%s: source %s (%d rows) != replica %s (%d rows)", q.src, sh, sn, rh, rn)
		}
		t.Logf("%-60.60s %d rows, hash %s on both sides", q.src, sn, sh)
	}
}

// slotWithinState checks invariant 1: the slot is never confirmed past what
// the destination has committed.
func slotWithinState(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica, slot string) {
	t.Helper()
	var state *int64
	if err := r.data.QueryRow(ctx, r.d.stateLSNSQL, slot).Scan(&state); err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	var confirmed int64
	if err := src.QueryRow(ctx, "SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if state == nil || confirmed > *state {
		t.Fatalf("slot confirmed at %d but the destination holds only %v", confirmed, state)
	}
}

// faultsExactlyOnce kills pgcdc with SIGKILL at random points of the
// snapshot and of replicate() while a workload runs on the source, restarts
// the source in the middle of a stream, and makes a destination write fail;
// after each, the next call must bring the replica to exactly the source.
func faultsExactlyOnce(t *testing.T, d *destination) {
	ctx := testContext(t, 8*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, faultSchema)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	srv := r.srv
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 0

	stop := make(chan struct{})
	var txs atomic.Int64
	var wg sync.WaitGroup
	var workErr error
	// The seed is drawn here: rng is not safe for concurrent use.
	seed := rng.Int63()
	wg.Add(1)
	go func() {
		defer wg.Done()
		workErr = workload(ctx, t, dsn, seed, stop, &txs)
	}()
	stopWorkload := func() {
		if stop != nil {
			close(stop)
			wg.Wait()
			stop = nil
			if workErr != nil {
				t.Fatalf("workload: %v", workErr)
			}
		}
	}
	defer stopWorkload()

	// callThenKill runs sql and kills pgcdc after a random delay; it reports
	// whether the call finished first.
	callThenKill := func(sql string, maxDelay time.Duration) bool {
		conn := srv.Connect(ctx, t)
		done := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, sql); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			return true
		case <-time.After(time.Duration(rng.Int63n(int64(maxDelay)))):
		}
		srv.Kill()
		kills++
		<-done
		srv.Restart(t)
		return false
	}

	// Up to five kills during the snapshot, then one that runs to the end.
	const initSQL = `SELECT * FROM init_replication('f', 'f_pub', table_names => ARRAY['accounts', 'events', 'tags'], persist_snapshots => true)`
	snapshotKills := 0
	for i := 0; i < 5; i++ {
		start := time.Now()
		if callThenKill(initSQL, 1500*time.Millisecond) {
			break
		}
		snapshotKills++
		t.Logf("killed init_replication after %v", time.Since(start).Round(time.Millisecond))
	}
	if snapshotKills == 5 {
		start := time.Now()
		mustExec(ctx, t, srv.Connect(ctx, t), initSQL)
		t.Logf("init_replication with its snapshot took %v", time.Since(start).Round(time.Millisecond))
	}
	r.connect(ctx, t)
	slotWithinState(ctx, t, src, r, "f")
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('g', 'g_pub', table_names => 'audit', publish => 'insert', persist_snapshots => true)`)

	// Kills during replicate() with small batches, so kills land between
	// and inside batch commits, on both slots.
	replicateKills := 0
	for replicateKills < 20 {
		slot := []string{"f", "g"}[rng.Intn(2)]
		sql := fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub', target_batch_size => %d)", slot, slot, 1+rng.Intn(200))
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		if !callThenKill(sql, 400*time.Millisecond) {
			replicateKills++
		}
		r.connect(ctx, t)
		slotWithinState(ctx, t, src, r, slot)
	}

	// The source restarts in the middle of a stream.
	conn := srv.Connect(ctx, t)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub', target_batch_size => 5)")
		done <- err
	}()
	time.Sleep(150 * time.Millisecond)
	if err := source.Restart(ctx, true); err != nil {
		t.Fatal(err)
	}
	err := <-done
	t.Logf("replicate() across a source crash returned: %v", err)
	// The workload's connection died with the source; start it again.
	wg.Wait()
	stop = make(chan struct{})
	workErr = nil
	seed = rng.Int63()
	wg.Add(1)
	go func() {
		defer wg.Done()
		workErr = workload(ctx, t, dsn, seed, stop, &txs)
	}()
	src.Close(ctx)
	if src, err = pgx.Connect(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	stopWorkload()
	r.connect(ctx, t)
	if _, err := r.pgcdc.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub')"); err != nil {
		t.Fatal(err)
	}
	// A destination write error: a constraint a client added to the replica
	// rejects a change, so the batch's commit fails.
	mustExec(ctx, t, r.data, "ALTER TABLE accounts ALTER COLUMN note SET NOT NULL")
	mustExec(ctx, t, src, "INSERT INTO accounts VALUES (900001, 1, NULL)")
	before := confirmedLSN(ctx, t, src, "f")
	_, err = r.pgcdc.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub')")
	if err == nil {
		t.Fatal("replicate() succeeded although the destination rejects a change")
	}
	t.Logf("replicate() with a failing destination write: %v", err)
	if after := confirmedLSN(ctx, t, src, "f"); after != before {
		t.Fatalf("a failed destination write moved the slot from %s to %s", before, after)
	}
	slotWithinState(ctx, t, src, r, "f")
	mustExec(ctx, t, r.data, "ALTER TABLE accounts ALTER COLUMN note DROP NOT NULL")

	for i := 0; i < 2; i++ {
		for _, slot := range []string{"f", "g"} {
			if _, err := r.pgcdc.Exec(ctx, fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub')", slot, slot)); err != nil {
				t.Fatal(err)
			}
			slotWithinState(ctx, t, src, r, slot)
		}
	}
	t.Logf("%d SIGKILLs (%d during the snapshot, %d during replicate), 1 source crash, 1 destination write error; %d source transactions",
		kills, snapshotKills, replicateKills, txs.Load())
	if kills < 20 {
		t.Fatalf("only %d kills injected", kills)
	}
	assertEqual(ctx, t, src, r.data)
	var dup int
	if err := r.data.QueryRow(ctx, "SELECT count(*) - count(DISTINCT id) FROM accounts").Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d duplicate keys in the replica (%v)", dup, err)
	}
}
