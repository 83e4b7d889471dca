package main_test

import (
	"context"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// lightFaultSchema is faultSchema with 20,000 events instead of 300,000:
// the kill -9 tests of continuous mode and resync need the same tables and
// workload, not the large snapshot.
var lightFaultSchema = strings.Replace(faultSchema, "generate_series(1, 300000)", "generate_series(1, 20000)", 1)

// waitFor polls query on conn until it returns want, or fails after d.
func waitFor(ctx context.Context, t *testing.T, conn *pgx.Conn, d time.Duration, query, want string) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < d {
		rows, err := queryRows(ctx, conn, query)
		if err == nil {
			got = strings.Join(rows, "\n")
			if got == want {
				return time.Since(start)
			}
		} else {
			got = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("after %v, %s returns %q, want %q", d, query, got, want)
	return 0
}

// confirmedAtLeast waits until the slot is confirmed at lsn or beyond.
func confirmedAtLeast(ctx context.Context, t *testing.T, src *pgx.Conn, slot, lsn string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		if err := src.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", slot, lsn).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s not confirmed at %s after %v", slot, lsn, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestContinuous runs start_replication, replicate() on a running slot,
// pause, resume, stop and a restart that resumes, on every destination.
func TestContinuous(t *testing.T) {
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			if reason := d.skip(); reason != "" {
				t.Skip(reason)
			}
			continuous(t, d)
		})
	}
}

func continuous(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, shopSchema)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('c', 'c_pub', schema_name => 'shop', persist_snapshots => true)`)
	count := "SELECT count(*) FROM shop.orders"

	var state string
	if err := r.pgcdc.QueryRow(ctx, `SELECT state FROM start_replication('c', 'c_pub', target_batch_size => 50)`).Scan(&state); err != nil || state != "running" {
		t.Fatalf("start_replication: %q, %v", state, err)
	}
	// A slot cannot be started twice, nor set up or dropped under a running stream.
	for sql, code := range map[string]string{
		`SELECT * FROM start_replication('c', 'c_pub')`:                             "55006",
		`SELECT * FROM init_replication('c', 'c_pub', schema_name => 'shop')`:       "55006",
		`SELECT * FROM drop_replication('c', 'c_pub')`:                              "55006",
		`SELECT * FROM verify_replication('c')`:                                     "55006",
		`SELECT * FROM stop_replication('nope')`:                                    "55000",
		`SELECT * FROM start_replication('c', 'c_pub', target_batch_size => 0)`:     "22023",
		`SELECT * FROM start_replication('nope', 'c_pub')`:                          "42704",
		`SELECT * FROM replicate('c', 'other_pub')`:                                 "22023",
		`SELECT * FROM start_replication('c', 'c_pub', delete_mode => 'sometimes')`: "22023",
	} {
		if _, err := r.pgcdc.Exec(ctx, sql); pgCode(err) != code {
			t.Errorf("%s: got %v, want SQLSTATE %s", sql, err, code)
		}
	}

	// Changes arrive without any call.
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) SELECT 1, g FROM generate_series(1, 100) g`)
	took := waitFor(ctx, t, r.data, 10*time.Second, count, "103")
	t.Logf("100 inserts visible in the replica after %v", took)

	// replicate() waits for the running slot and says what was applied.
	mustExec(ctx, t, src, `UPDATE shop.orders SET note = 'u' WHERE id <= 10; DELETE FROM shop.customers WHERE id = 3`)
	rows := rowsOf(ctx, t, r.pgcdc, `SELECT table_name, inserts, updates, deletes FROM replicate('c', 'c_pub')`)
	if got := strings.Join(rows, ";"); got != "shop.customers|0|0|1;shop.orders|0|10|0" {
		t.Fatalf("replicate() on a running slot returned %q", got)
	}
	sameRows(ctx, t, src, r.data, "SELECT id, note FROM shop.orders ORDER BY id", "SELECT id, note FROM shop.orders ORDER BY id")
	sameRows(ctx, t, src, r.data, "SELECT id FROM shop.customers ORDER BY id", "SELECT id FROM shop.customers ORDER BY id")

	// An idle slot advances: WAL written outside the publication is confirmed.
	mustExec(ctx, t, src, `CREATE TABLE unpublished (v int); INSERT INTO unpublished SELECT generate_series(1, 1000)`)
	var lsn string
	if err := src.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	confirmedAtLeast(ctx, t, src, "c", lsn, 10*time.Second)
	slotWithinState(ctx, t, src, r, "c")

	// Paused: nothing arrives, replicate() refuses, and it stays paused
	// across a restart.
	if err := r.pgcdc.QueryRow(ctx, `SELECT state FROM pause_replication('c')`).Scan(&state); err != nil || state != "paused" {
		t.Fatalf("pause_replication: %q, %v", state, err)
	}
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (2, 1)`)
	if _, err := r.pgcdc.Exec(ctx, `SELECT * FROM replicate('c', 'c_pub')`); pgCode(err) != "55000" {
		t.Fatalf("replicate() on a paused slot: %v, want 55000", err)
	}
	if err := r.srv.Signal(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	r.restart(ctx, t)
	time.Sleep(1500 * time.Millisecond)
	waitFor(ctx, t, r.data, time.Second, count, "103")
	if err := r.pgcdc.QueryRow(ctx, `SELECT state FROM resume_replication('c')`).Scan(&state); err != nil || state != "running" {
		t.Fatalf("resume_replication: %q, %v", state, err)
	}
	waitFor(ctx, t, r.data, 10*time.Second, count, "104")

	// A restart resumes a running slot, after SIGTERM and after SIGKILL.
	// SIGTERM drains the stream well within the grace (30s by default).
	sigterm := time.Now()
	if err := r.srv.Signal(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(sigterm); d > 10*time.Second {
		t.Fatalf("SIGTERM took %v to drain an idle continuous slot", d)
	} else {
		t.Logf("SIGTERM drained the continuous slot and exited in %v", d.Round(time.Millisecond))
	}
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (2, 2)`)
	r.restart(ctx, t)
	waitFor(ctx, t, r.data, 10*time.Second, count, "105")
	r.srv.Kill()
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (2, 3)`)
	r.restart(ctx, t)
	waitFor(ctx, t, r.data, 10*time.Second, count, "106")

	// Stopped, the slot is driven by replicate() again, also after a restart.
	if err := r.pgcdc.QueryRow(ctx, `SELECT state FROM stop_replication('c')`).Scan(&state); err != nil || state != "stopped" {
		t.Fatalf("stop_replication: %q, %v", state, err)
	}
	r.srv.Kill()
	r.restart(ctx, t)
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (2, 4)`)
	time.Sleep(1500 * time.Millisecond)
	waitFor(ctx, t, r.data, time.Second, count, "106")
	rows = rowsOf(ctx, t, r.pgcdc, `SELECT table_name, inserts FROM replicate('c', 'c_pub')`)
	if got := strings.Join(rows, ";"); got != "shop.orders|1" {
		t.Fatalf("replicate() after stop_replication returned %q", got)
	}
	sameRows(ctx, t, src, r.data, "SELECT id, customer_id, amount::text, note FROM shop.orders ORDER BY id",
		"SELECT id, customer_id, CAST(amount AS VARCHAR), note FROM shop.orders ORDER BY id")
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM drop_replication('c', 'c_pub')`)
}

// TestContinuousKill9 kills pgcdc with SIGKILL at random points while a
// slot replicates continuously under a concurrent workload; every restart
// resumes the slot, and the replica ends exactly equal to the source.
func TestContinuousKill9(t *testing.T) {
	d := duckdbDestination
	ctx := testContext(t, 4*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, lightFaultSchema)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('f', 'f_pub', table_names => ARRAY['accounts', 'events', 'tags'], persist_snapshots => true)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('g', 'g_pub', table_names => 'audit', publish => 'insert', persist_snapshots => true)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('f', 'f_pub', target_batch_size => 500)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('g', 'g_pub')`)

	stop := make(chan struct{})
	var txs atomic.Int64
	var wg sync.WaitGroup
	var workErr error
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seed := rng.Int63()
	wg.Add(1)
	go func() {
		defer wg.Done()
		workErr = workload(ctx, t, dsn, seed, stop, &txs)
	}()
	const kills = 8
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(300+rng.Intn(1200)) * time.Millisecond)
		r.srv.Kill()
		r.restart(ctx, t)
		slotWithinState(ctx, t, src, r, "f")
	}
	close(stop)
	wg.Wait()
	if workErr != nil {
		t.Fatalf("workload: %v", workErr)
	}
	// replicate() on the running slot returns once it has caught up.
	start := time.Now()
	for _, slot := range []string{"f", "g"} {
		if _, err := r.pgcdc.Exec(ctx, "SELECT * FROM replicate($1, $2)", slot, slot+"_pub"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d SIGKILLs during continuous replication, %d source transactions; replicate() caught up in %v",
		kills, txs.Load(), time.Since(start).Round(time.Millisecond))
	assertEqual(ctx, t, src, r.data)
	slotWithinState(ctx, t, src, r, "f")
	slotWithinState(ctx, t, src, r, "g")
	var dup int
	if err := r.data.QueryRow(ctx, "SELECT count(*) - count(DISTINCT id) FROM audit").Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d duplicate rows in the append-only table (%v)", dup, err)
	}
	for _, l := range strings.Split(r.srv.Logs(), "\n") {
		if strings.Contains(l, "continuous replication failed") {
			t.Logf("retried: %.300s", l)
		}
	}
	if !strings.Contains(r.srv.Logs(), "resuming continuous replication") {
		t.Fatal("the restarted pgcdc did not log that it resumed the slot")
	}
}
