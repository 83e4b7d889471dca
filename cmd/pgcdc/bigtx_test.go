package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// peakRSS reads a process's high-water resident set from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// bigTransaction replicates one source transaction that inserts, then
// updates, then deletes many rows, and checks that pgcdc's memory stays
// bounded by the batch, not by the transaction. PGCDC_BIGTX_ROWS sets the
// row count (default 1,000,000: 3 million changes in one transaction), and
// PGCDC_BIGTX_DEST DuckDB settings for its file (?memory_limit=256MB).
func bigTransaction(t *testing.T, d *destination) {
	rows := 1_000_000
	if v := os.Getenv("PGCDC_BIGTX_ROWS"); v != "" {
		rows, _ = strconv.Atoi(v)
	}
	ctx := testContext(t, 10*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, `CREATE TABLE big (id int PRIMARY KEY, v text, n int8)`)
	opts := pgcdctest.Options{Source: dsn}
	if v := os.Getenv("PGCDC_BIGTX_DEST"); v != "" && d == duckdbDestination {
		opts.Extra = []string{"--destination", "duckdb:" + t.TempDir() + "/big.duckdb" + v}
	}
	r := d.start(ctx, t, opts)
	srv, rep := r.srv, r.pgcdc
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('big', 'big_pub', table_names => 'big')")
	base := peakRSS(t, srv.PID())

	start := time.Now()
	mustExec(ctx, t, src, fmt.Sprintf(`BEGIN;
		INSERT INTO big SELECT g, repeat('x', 50) || g, g FROM generate_series(1, %d) g;
		UPDATE big SET v = 'updated ' || id, n = n * 2;
		DELETE FROM big WHERE id %% 3 = 0;
		COMMIT`, rows))
	t.Logf("source transaction: %v", time.Since(start))

	start = time.Now()
	res := callReplicate(ctx, t, rep, "SELECT * FROM replicate('big', 'big_pub', target_batch_size => 10000)")
	elapsed := time.Since(start)
	got := res["public.big"]
	if got.inserts != int64(rows) || got.updates != int64(rows) || got.deletes != int64(rows/3) {
		t.Fatalf("replicate = %+v", got)
	}
	peak := peakRSS(t, srv.PID())
	changes := got.inserts + got.updates + got.deletes
	t.Logf("replicated %d changes in one transaction in %v (%.0f changes/s); pgcdc peak RSS %d MiB (%d MiB before the call)",
		changes, elapsed, float64(changes)/elapsed.Seconds(), peak>>20, base>>20)

	var n, bad int64
	if err := r.data.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE v <> 'updated ' || id OR n <> 2 * id OR id % 3 = 0) FROM big").Scan(&n, &bad); err != nil {
		t.Fatal(err)
	}
	if n != int64(rows-rows/3) || bad != 0 {
		t.Fatalf("replica has %d rows, %d wrong", n, bad)
	}
	// Go's share is bounded by target_batch_size, and batches reach DuckDB
	// through a table function rather than staging tables, so DuckDB holds
	// little per change either. Measured: 1M rows (2.33M changes) peak at
	// about 310 MiB; holding the transaction would take well over 1 GiB.
	if limit := int64(768) << 20; peak > limit {
		t.Fatalf("peak RSS %d MiB exceeds %d MiB", peak>>20, limit>>20)
	}
}

// goHeapPeak is the largest Go heap pgcdc logged for its last call with
// the given message ("snapshot memory" or "replicate memory").
func goHeapPeak(t *testing.T, srv *pgcdctest.Server, msg string) int64 {
	t.Helper()
	var peak int64 = -1
	for _, line := range strings.Split(srv.Logs(), "\n") {
		var l struct {
			Message string `json:"message"`
			Peak    int64  `json:"go_heap_peak_bytes"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == msg {
			peak = l.Peak
		}
	}
	if peak < 0 {
		t.Fatalf("pgcdc logged no %q", msg)
	}
	return peak
}

// memoryBoundedByBytes copies and then updates, in one source
// transaction, rows of 50 kB each, with --batch-memory 16MB: pgcdc's own
// memory must follow the byte budget, not target_batch_size's 1000 rows
// (50 MB of values) or the snapshot's 10,000-row chunks (500 MB).
// PGCDC_WIDE_ROWS sets the row count (default 4000, 200 MB of values).
//
// The bound is checked on the Go heap, which pgcdc logs at its fullest
// points; the process's RSS also holds DuckDB's buffer pool and
// transaction-local storage, which the budget does not govern and which
// the test only reports.
func memoryBoundedByBytes(t *testing.T, d *destination) {
	rows := 4000
	if v := os.Getenv("PGCDC_WIDE_ROWS"); v != "" {
		rows, _ = strconv.Atoi(v)
	}
	const budget = 16 << 20
	ctx := testContext(t, 10*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	// md5 hex does not compress much, and each row is far over the TOAST
	// threshold: 1600 × 32 bytes = 50 kB.
	start := time.Now()
	mustExec(ctx, t, src, fmt.Sprintf(`CREATE TABLE wide (id int PRIMARY KEY, body text);
		INSERT INTO wide SELECT g, (SELECT string_agg(md5(g::text || '-' || i::text), '') FROM generate_series(1, 1600) i) FROM generate_series(1, %d) g`, rows))
	t.Logf("source: %d rows of 50 kB in %v", rows, time.Since(start))
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn, Extra: []string{"--batch-memory", "16MB"}})
	srv, rep := r.srv, r.pgcdc
	base := peakRSS(t, srv.PID())
	start = time.Now()
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('wide', 'wide_pub', table_names => 'wide', persist_snapshots => true)")
	snapHeap := goHeapPeak(t, srv, "snapshot memory")
	t.Logf("snapshot of %d MB in %v: Go heap peak %d MiB; process peak RSS %d MiB (%d MiB at start)",
		rows*50/1000, time.Since(start), snapHeap>>20, peakRSS(t, srv.PID())>>20, base>>20)

	mustExec(ctx, t, src, `UPDATE wide SET body = reverse(body)`)
	start = time.Now()
	res := callReplicate(ctx, t, rep, "SELECT * FROM replicate('wide', 'wide_pub')")
	streamHeap := goHeapPeak(t, srv, "replicate memory")
	t.Logf("stream of %d updates in one transaction in %v: Go heap peak %d MiB; process peak RSS %d MiB",
		res["public.wide"].updates, time.Since(start), streamHeap>>20, peakRSS(t, srv.PID())>>20)
	sameRows(ctx, t, src, r.data, "SELECT id, md5(body) FROM wide ORDER BY id", "SELECT id, md5(body) FROM wide ORDER BY id")

	// A batch's values are held as source rows and as staged text for the
	// destination, and the garbage of the previous batch may not be
	// collected yet: a few budgets, plus the process's fixed share.
	if limit := int64(6*budget + 48<<20); snapHeap > limit || streamHeap > limit {
		t.Fatalf("Go heap peaked at %d MiB (snapshot) and %d MiB (stream), over %d MiB for a %d MiB budget",
			snapHeap>>20, streamHeap>>20, limit>>20, budget>>20)
	}
}
