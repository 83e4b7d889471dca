package bench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// TestCeilings is the one-command benchmark of issue 10: pgcdc against the
// physical limits of the source, each contender and its ceiling in the same
// run, alternating, as medians of several runs (docs/benchmarks.md):
//
//	go test ./bench -run TestCeilings -v -timeout 60m -ceilings
//
// It starts a source and a destination cluster, runs `pgcdc serve` as a
// subprocess and drives it over SQL as a user would, checks every replica
// against the source by an ordered hash, and prints a table of medians,
// ratios and the targets.
var (
	ceilOn    = flag.Bool("ceilings", false, "run the benchmark against the ceilings (TestCeilings)")
	ceilScale = flag.Float64("ceilings.scale", 1, "workload size relative to the issue's: 1 is a 2M-row pgbench_accounts and a 500k-row mixed table, "+
		"a backlog of 1M changes, 10,000 rows of 50 KB")
	ceilRuns  = flag.Int("ceilings.runs", 3, "runs of each contender and ceiling; the table shows medians")
	ceilParts = flag.String("ceilings.parts", "snapshot,drain,memory,sustained", "parts to run, comma-separated: snapshot, drain, memory, sustained")
	ceilRates = flag.String("ceilings.rates", "200,400,800,1600,3200", "pgbench -R rates (transactions per second) of the sustained part, increasing")
	ceilTime  = flag.Duration("ceilings.time", 20*time.Second, "how long pgbench runs at each rate")
	ceilLag   = flag.Duration("ceilings.catchup", 5*time.Second, "a rate is sustained when the replica reaches the source's end position within this long after pgbench stops")
	ceilProf  = flag.String("ceilings.profile", "", "directory for CPU profiles: each pgcdc serve of a part writes DIR/<part>-<run>.pprof (PGCDC_CPU_PROFILE) when it shuts down")
)

// outcome is one line of the final table.
type outcome struct {
	what, contender, ceiling string
	cont, ceil               []time.Duration // empty for lines given by value
	value, limit             string          // for lines given by value
	ratio                    float64         // how many times the target's quantity
	target                   string
	met                      bool
	info                     bool // no target: a measurement to report
	note                     string
	details                  []string // more lines under its raw-times line
}

type ceilings struct {
	t        *testing.T
	ctx      context.Context
	src, dst *pgtest.Cluster
	bin      string // Postgres client binaries
	runs     int
	profile  string // -ceilings.profile, absolute; "" for none
	out      []outcome
}

func TestCeilings(t *testing.T) {
	if !*ceilOn {
		t.Skip("a benchmark of about 15 minutes: run with -ceilings (and -timeout 60m)")
	}
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Skip(err)
	}
	for _, p := range []string{"pgbench", "pg_recvlogical"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			t.Skipf("no %s next to the server binaries (postgresql-contrib): %v", p, err)
		}
	}
	if _, err := pgcdctest.Binary(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 58*time.Minute)
	defer cancel()
	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
		"wal_sender_timeout": "0", "max_logical_replication_workers": "8", "max_worker_processes": "16"}
	src, err := pgtest.Start(ctx, pgtest.Options{Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	dst, err := pgtest.Start(ctx, pgtest.Options{Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Stop()
	c := &ceilings{t: t, ctx: ctx, src: src, dst: dst, bin: bin, runs: max(1, *ceilRuns)}
	if *ceilProf != "" {
		if c.profile, err = filepath.Abs(*ceilProf); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	for _, part := range strings.Split(*ceilParts, ",") {
		switch strings.TrimSpace(part) {
		case "snapshot":
			c.snapshot()
		case "drain":
			c.drain()
		case "memory":
			c.memory()
		case "sustained":
			c.sustained()
		default:
			t.Fatalf("-ceilings.parts: unknown part %q", part)
		}
		// The table so far, so that a run cut short still reports.
		c.report(time.Since(started))
	}
}

func (c *ceilings) scaled(n int) int { return max(1, int(math.Round(float64(n)**ceilScale))) }

func (c *ceilings) exec(conn *pgx.Conn, sql string) {
	c.t.Helper()
	if _, err := conn.Exec(c.ctx, sql); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
}

func (c *ceilings) connect(cl *pgtest.Cluster, db string) *pgx.Conn {
	c.t.Helper()
	conn, err := cl.Connect(c.ctx, db)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (c *ceilings) createDB(cl *pgtest.Cluster, db string) *pgx.Conn {
	c.t.Helper()
	if err := cl.CreateDatabase(c.ctx, db); err != nil {
		c.t.Fatal(err)
	}
	return c.connect(cl, db)
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// pgcdc starts `pgcdc serve` on a source database, into a new DuckDB file
// or, with destDB, into that database of the destination cluster. name
// (<part>-<run>) names its CPU profile under -ceilings.profile; stop it
// with c.stop so that the profile is written.
func (c *ceilings) pgcdc(srcDB, destDB, name string) (*pgcdctest.Server, *pgx.Conn) {
	c.t.Helper()
	return c.pgcdcOn(pgcdctest.Options{Source: c.src.DSN(srcDB)}, destDB, name)
}

// pgcdcOn is pgcdc with more options (an existing DuckDB file).
func (c *ceilings) pgcdcOn(o pgcdctest.Options, destDB, name string) (*pgcdctest.Server, *pgx.Conn) {
	c.t.Helper()
	o.Extra = append(o.Extra, "--log-level", "warn")
	if destDB != "" {
		o.Destination = c.dst.DSN(destDB)
	}
	if c.profile != "" {
		p := c.profilePath(name)
		// A profile left by an earlier benchmark must not pass for this one's.
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			c.t.Fatal(err)
		}
		o.Env = append(o.Env, "PGCDC_CPU_PROFILE="+p)
	}
	srv := pgcdctest.Start(c.t, o)
	return srv, srv.Connect(c.ctx, c.t)
}

func (c *ceilings) profilePath(name string) string { return filepath.Join(c.profile, name+".pprof") }

// stop shuts a pgcdc serve down as an operator does, with SIGTERM, so that
// it writes its CPU profile; with -ceilings.profile, the profile must then
// exist and not be empty. conns are its clients, closed first.
func (c *ceilings) stop(srv *pgcdctest.Server, name string, conns ...*pgx.Conn) {
	c.t.Helper()
	for _, conn := range conns {
		conn.Close(c.ctx)
	}
	if err := srv.Signal(syscall.SIGTERM, time.Minute); err != nil {
		if c.profile != "" {
			c.t.Fatalf("%s: %v, so its profile is not written", name, err)
		}
		c.t.Logf("%s: %v; killed", name, err)
		srv.Kill()
		return
	}
	if c.profile == "" {
		return
	}
	p := c.profilePath(name)
	fi, err := os.Stat(p)
	if err != nil {
		c.t.Fatalf("%s: no CPU profile after shutdown: %v", name, err)
	}
	if fi.Size() == 0 {
		c.t.Fatalf("%s: the CPU profile %s is empty", name, p)
	}
	c.t.Logf("%s: CPU profile %s (%d bytes)", name, p, fi.Size())
}

func sqlList(names []string) string {
	var q []string
	for _, n := range names {
		q = append(q, "'"+n+"'")
	}
	return "ARRAY[" + strings.Join(q, ", ") + "]"
}

func initSQL(slot string, tables []string) string {
	return fmt.Sprintf("SELECT * FROM init_replication('%s', '%s_pub', table_names => %s, persist_snapshots => true)", slot, slot, sqlList(tables))
}

// waitSubscriptionReady polls until every table of the destination
// database's subscriptions has finished its initial copy.
func (c *ceilings) waitSubscriptionReady(conn *pgx.Conn) {
	c.t.Helper()
	for {
		var pending int
		if err := conn.QueryRow(c.ctx, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'").Scan(&pending); err != nil {
			c.t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- snapshot ----

const mixedDDL = `CREATE TABLE mixed (id bigint PRIMARY KEY, amount numeric(14,4), at timestamptz, tags text[], doc jsonb, uid uuid, raw bytea, note text)`

func (c *ceilings) snapshot() {
	t := c.t
	scale := max(1, int(math.Round(20**ceilScale)))
	mixedRows := c.scaled(500_000)
	src := c.createDB(c.src, "snap")
	if _, err := runClient(c.ctx, filepath.Join(c.bin, "pgbench"), "-i", "-q", "-I", "dtGvp", "-s", strconv.Itoa(scale),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.src.Port), "-U", "postgres", "snap"); err != nil {
		t.Fatal(err)
	}
	c.exec(src, mixedDDL)
	c.exec(src, fmt.Sprintf(`INSERT INTO mixed SELECT g, g * 1.2345, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1.5 second',
		ARRAY['tag' || g %% 10, 'x'], jsonb_build_object('g', g, 's', 'v' || g, 'a', jsonb_build_array(g %% 3, 'y')),
		md5(g::text)::uuid, decode(md5(g::text), 'hex'), 'note ' || g FROM generate_series(1, %d) g`, mixedRows))
	c.exec(src, "VACUUM ANALYZE")
	tables := []string{"pgbench_accounts", "mixed"}
	checks := sourceChecks(c.ctx, t, src, map[string]string{"pgbench_accounts": "aid", "mixed": "id"})
	t.Logf("snapshot: pgbench_accounts %d rows (pgbench -i -s %d), mixed %d rows", checks[1].rows, scale, checks[0].rows)
	c.exec(src, "CREATE PUBLICATION native_snap FOR TABLE pgbench_accounts, mixed")
	var schema strings.Builder
	for _, tbl := range tables {
		var ddl string
		if tbl == "mixed" {
			ddl = mixedDDL
		} else {
			ddl = "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))"
		}
		schema.WriteString(ddl + ";")
	}

	copyCeiling := func() {
		for _, tbl := range tables {
			if _, err := src.PgConn().CopyTo(c.ctx, io.Discard, "COPY "+tbl+" TO STDOUT (FORMAT binary)"); err != nil {
				t.Fatal(err)
			}
		}
	}
	duck := func(i int) time.Duration {
		name := fmt.Sprintf("snapshot-duckdb-%d", i+1)
		srv, rep := c.pgcdc("snap", "", name)
		slot := fmt.Sprintf("snap_duck_%d", i)
		d := timed(func() { c.exec(rep, initSQL(slot, tables)) })
		verify(c.ctx, t, "snapshot into DuckDB", rep, checks)
		c.exec(rep, fmt.Sprintf("SELECT * FROM drop_replication('%s', '%s_pub')", slot, slot))
		c.stop(srv, name, rep)
		os.Remove(srv.DuckDB)
		return d
	}
	pg := func(i int) time.Duration {
		db := fmt.Sprintf("snap_pgcdc_%d", i)
		dst := c.createDB(c.dst, db)
		name := fmt.Sprintf("snapshot-postgres-%d", i+1)
		srv, rep := c.pgcdc("snap", db, name)
		slot := fmt.Sprintf("snap_pg_%d", i)
		d := timed(func() { c.exec(rep, initSQL(slot, tables)) })
		verify(c.ctx, t, "snapshot into Postgres", dst, checks)
		c.exec(rep, fmt.Sprintf("SELECT * FROM drop_replication('%s', '%s_pub')", slot, slot))
		c.stop(srv, name, rep)
		return d
	}
	native := func(i int) time.Duration {
		db := fmt.Sprintf("snap_native_%d", i)
		dst := c.createDB(c.dst, db)
		c.exec(dst, schema.String())
		d := timed(func() {
			c.exec(dst, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION native_snap", db, c.src.DSN("snap")))
			c.waitSubscriptionReady(dst)
		})
		verify(c.ctx, t, "native initial sync", dst, checks)
		c.exec(dst, "DROP SUBSCRIPTION "+db)
		return d
	}
	var tDuck, tCopy, tPG, tNative []time.Duration
	for i := 0; i < c.runs; i++ {
		steps := []func(){
			func() { tCopy = append(tCopy, timed(copyCeiling)) },
			func() { tDuck = append(tDuck, duck(i)) },
			func() { tNative = append(tNative, native(i)) },
			func() { tPG = append(tPG, pg(i)) },
		}
		// Rotate the order, so that none always runs first.
		for j := range steps {
			steps[(i+j)%len(steps)]()
		}
		t.Logf("snapshot run %d: binary COPY %.2fs, into DuckDB %.2fs, native initial sync %.2fs, pgcdc into Postgres %.2fs",
			i+1, tCopy[i].Seconds(), tDuck[i].Seconds(), tNative[i].Seconds(), tPG[i].Seconds())
	}
	r := medianDur(tCopy).Seconds() / medianDur(tDuck).Seconds()
	c.out = append(c.out, outcome{what: "snapshot into DuckDB", contender: "init_replication(persist_snapshots)", ceiling: "binary COPY to /dev/null",
		cont: tDuck, ceil: tCopy, ratio: r, target: "≥ 0.7 of the ceiling's speed", met: r >= 0.7})
	r = medianDur(tNative).Seconds() / medianDur(tPG).Seconds()
	c.out = append(c.out, outcome{what: "snapshot into Postgres", contender: "init_replication(persist_snapshots)", ceiling: "native initial sync",
		cont: tPG, ceil: tNative, ratio: r, target: "≥ 1.5× native", met: r >= 1.5})
}

// ---- drain ----

const drainDDL = `CREATE TABLE drain_t (id bigint PRIMARY KEY, k int, v numeric(12,2), note text, at timestamptz)`

// drainGen writes txns transactions of about 100 changes each: 80 inserts,
// up to 15 updates of hot keys (the session's first 1000 ids) and, once
// there are enough rows, 5 deletes of older ones. Several sessions write at
// once, each in its own range of ids, so none waits on another's locks.
const drainGen = `CREATE PROCEDURE drain_gen(txns int, session int) LANGUAGE plpgsql AS $$
DECLARE
  first bigint := session::bigint * 1000000000;
  base bigint := 0;
BEGIN
  FOR i IN 1..txns LOOP
    INSERT INTO drain_t SELECT first + base + g, g, g * 1.5, 'row ' || (base + g), '2026-01-01 00:00:00+00'::timestamptz + (base + g) * interval '1 second'
      FROM generate_series(1, 80) g;
    UPDATE drain_t SET v = v + 1, note = note || '.', at = at + interval '1 hour'
      WHERE id IN (SELECT first + (i * 7919 + g * 104729) % least(base + 80, 1000) + 1 FROM generate_series(1, 15) g);
    IF base > 6000 THEN
      DELETE FROM drain_t WHERE id > first + base - 5000 AND id <= first + base - 4995;
    END IF;
    base := base + 80;
    COMMIT;
  END LOOP;
END $$`

func (c *ceilings) drain() {
	t := c.t
	txns := c.scaled(10_000)
	src := c.createDB(c.src, "drain")
	c.exec(src, drainDDL)
	c.exec(src, drainGen)
	c.exec(src, "CREATE PUBLICATION native_drain FOR TABLE drain_t")
	tables := []string{"drain_t"}

	// Every contender of every run gets its own slot, all created before
	// the backlog, so they all drain the same changes to the same end.
	type run struct {
		duckSrv, pgSrv *pgcdctest.Server
		duck, pg       *pgx.Conn
		pgDst, natDst  *pgx.Conn
	}
	runs := make([]run, c.runs)
	for i := range runs {
		r := &runs[i]
		r.duckSrv, r.duck = c.pgcdc("drain", "", fmt.Sprintf("drain-duckdb-%d", i+1))
		c.exec(r.duck, initSQL(fmt.Sprintf("drain_duck_%d", i), tables))
		db := fmt.Sprintf("drain_pgcdc_%d", i)
		r.pgDst = c.createDB(c.dst, db)
		r.pgSrv, r.pg = c.pgcdc("drain", db, fmt.Sprintf("drain-postgres-%d", i+1))
		c.exec(r.pg, initSQL(fmt.Sprintf("drain_pg_%d", i), tables))
		c.exec(src, fmt.Sprintf("SELECT pg_create_logical_replication_slot('drain_twin_%d', 'pgoutput')", i))
		db = fmt.Sprintf("drain_native_%d", i)
		r.natDst = c.createDB(c.dst, db)
		c.exec(r.natDst, drainDDL)
		c.exec(r.natDst, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION native_drain WITH (copy_data = false, enabled = false)", db, c.src.DSN("drain")))
	}
	const sessions = 4
	gen := timed(func() {
		errs := make(chan error, sessions)
		for i := 0; i < sessions; i++ {
			go func() {
				conn, err := c.src.Connect(c.ctx, "drain")
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close(context.Background())
				// The table is planned empty, and the procedure keeps its
				// plans: without this the updates scan the whole table, and
				// writing the backlog takes minutes instead of seconds.
				if _, err := conn.Exec(c.ctx, "SET enable_seqscan = off"); err != nil {
					errs <- err
					return
				}
				_, err = conn.Exec(c.ctx, fmt.Sprintf("CALL drain_gen(%d, %d)", (txns+sessions-1)/sessions, i+1))
				errs <- err
			}()
		}
		for i := 0; i < sessions; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
	// A last transaction, committed with synchronous_commit on so the whole
	// backlog is flushed; mark is a position inside it, so a replica whose
	// last applied commit ends past mark has applied everything.
	var mark, endpos string
	tx, err := src.Begin(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(c.ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(c.ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&mark); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(c.ctx, "INSERT INTO drain_t VALUES (0, 0, 0, 'last', '2026-01-01 00:00:00+00')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(c.ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.QueryRow(c.ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&endpos); err != nil {
		t.Fatal(err)
	}
	var changes int64
	if err := src.QueryRow(c.ctx, "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = 'drain_t'").Scan(&changes); err != nil {
		t.Fatal(err)
	}
	checks := sourceChecks(c.ctx, t, src, map[string]string{"drain_t": "id"})
	t.Logf("drain: a backlog of about %d changes in %d transactions (written by %d sessions in %.1fs), %d rows at the end, end LSN %s",
		changes, (txns+sessions-1)/sessions*sessions+1, sessions, gen.Seconds(), checks[0].rows, endpos)

	recv := func(i int) (time.Duration, time.Duration, time.Duration) {
		slot := fmt.Sprintf("drain_twin_%d", i)
		stop := slotCPU(c.ctx, c.src.DSN("drain"), slot)
		d := timed(func() {
			if _, err := runClient(c.ctx, filepath.Join(c.bin, "pg_recvlogical"), "-d", c.src.DSN("drain"), "--slot", slot, "--start", "--no-loop",
				"-f", "/dev/null", "-E", endpos, "-o", "proto_version=1", "-o", "publication_names=native_drain"); err != nil {
				t.Fatal(err)
			}
		})
		u, s := stop()
		var confirmed string
		if err := src.QueryRow(c.ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed); err != nil {
			t.Fatal(err)
		}
		var past bool
		if err := src.QueryRow(c.ctx, "SELECT $1::pg_lsn > $2::pg_lsn", confirmed, mark).Scan(&past); err != nil {
			t.Fatal(err)
		}
		if !past {
			t.Fatalf("pg_recvlogical stopped at %s, before the backlog's last transaction (%s)", confirmed, mark)
		}
		return d, u, s
	}
	// replicate times the drain by one replicate() call, and returns the
	// CPU time of the walsender and of pgcdc serve itself meanwhile.
	replicate := func(what string, srv *pgcdctest.Server, conn, check *pgx.Conn, slot string) (d, ws, own time.Duration) {
		u0, s0, err := procCPU(srv.PID())
		if err != nil {
			t.Fatal(err)
		}
		stop := slotCPU(c.ctx, c.src.DSN("drain"), slot)
		d = timed(func() { c.exec(conn, fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub')", slot, slot)) })
		u, s := stop()
		u1, s1, err := procCPU(srv.PID())
		if err != nil {
			t.Fatal(err)
		}
		verify(c.ctx, t, what, check, checks)
		return d, u + s, u1 + s1 - u0 - s0
	}
	native := func(i int) time.Duration {
		db := fmt.Sprintf("drain_native_%d", i)
		dst := runs[i].natDst
		d := timed(func() {
			c.exec(dst, "ALTER SUBSCRIPTION "+db+" ENABLE")
			for {
				var done bool
				err := dst.QueryRow(c.ctx, `SELECT coalesce(bool_or(s.remote_lsn > $1::pg_lsn), false) FROM pg_replication_origin_status s
					JOIN pg_subscription sub ON s.external_id = 'pg_' || sub.oid WHERE sub.subname = $2`, mark, db).Scan(&done)
				if err != nil {
					t.Fatal(err)
				}
				if done {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		verify(c.ctx, t, "native apply", dst, checks)
		c.exec(dst, "DROP SUBSCRIPTION "+db)
		return d
	}
	var tDuck, tRecv, tPG, tNative, wsRecv, wsDuck []time.Duration
	var wsRecvSys, ownDuck, ownPG []time.Duration
	for i := 0; i < c.runs; i++ {
		r := runs[i]
		steps := []func(){
			func() {
				d, u, s := recv(i)
				tRecv, wsRecv, wsRecvSys = append(tRecv, d), append(wsRecv, u+s), append(wsRecvSys, s)
			},
			func() {
				d, ws, own := replicate("drain into DuckDB", r.duckSrv, r.duck, r.duck, fmt.Sprintf("drain_duck_%d", i))
				tDuck, wsDuck, ownDuck = append(tDuck, d), append(wsDuck, ws), append(ownDuck, own)
			},
			func() { tNative = append(tNative, native(i)) },
			func() {
				d, _, own := replicate("drain into Postgres", r.pgSrv, r.pg, r.pgDst, fmt.Sprintf("drain_pg_%d", i))
				tPG, ownPG = append(tPG, d), append(ownPG, own)
			},
		}
		for j := range steps {
			steps[(i+j)%len(steps)]()
		}
		t.Logf("drain run %d: pg_recvlogical %.2fs (walsender CPU %.2fs, %.2fs of it system), into DuckDB %.2fs (walsender CPU %.2fs, pgcdc CPU %.2fs), native apply %.2fs, pgcdc into Postgres %.2fs (pgcdc CPU %.2fs)",
			i+1, tRecv[i].Seconds(), wsRecv[i].Seconds(), wsRecvSys[i].Seconds(), tDuck[i].Seconds(), wsDuck[i].Seconds(), ownDuck[i].Seconds(),
			tNative[i].Seconds(), tPG[i].Seconds(), ownPG[i].Seconds())
		c.stop(r.duckSrv, fmt.Sprintf("drain-duckdb-%d", i+1), r.duck)
		c.stop(r.pgSrv, fmt.Sprintf("drain-postgres-%d", i+1), r.pg)
	}
	ratio := medianDur(tRecv).Seconds() / medianDur(tDuck).Seconds()
	c.out = append(c.out, outcome{what: "drain into DuckDB (defaults)", contender: "replicate()", ceiling: "pg_recvlogical to /dev/null",
		cont: tDuck, ceil: tRecv, ratio: ratio, target: "≥ 2× pg_recvlogical", met: ratio >= 2,
		note: fmt.Sprintf("CPU seconds run by run: pgcdc serve %s, the walsender under it %s, the walsender under pg_recvlogical %s", secs(ownDuck), secs(wsDuck), secs(wsRecv))})
	ratio = medianDur(wsRecv).Seconds() / medianDur(tDuck).Seconds()
	c.out = append(c.out, outcome{what: "drain into DuckDB vs the walsender's own CPU", contender: "replicate()", ceiling: "walsender CPU under pg_recvlogical",
		cont: tDuck, ceil: wsRecv, ratio: ratio, target: "how far from the limit (1.0 is the limit)", info: true,
		note: fmt.Sprintf("system time %ss of it; the walsender used %ss of CPU under pgcdc, and pgcdc serve itself %ss", secs([]time.Duration{medianDur(wsRecvSys)}),
			secs([]time.Duration{medianDur(wsDuck)}), secs([]time.Duration{medianDur(ownDuck)}))})
	ratio = medianDur(tNative).Seconds() / medianDur(tPG).Seconds()
	c.out = append(c.out, outcome{what: "drain into Postgres (defaults)", contender: "replicate()", ceiling: "native apply",
		cont: tPG, ceil: tNative, ratio: ratio, target: "≥ 2× native", met: ratio >= 2, note: "pgcdc serve CPU seconds run by run: " + secs(ownPG)})
}

// ---- memory ----

func (c *ceilings) memory() {
	t := c.t
	n := c.scaled(10_000)
	src := c.createDB(c.src, "mem")
	// STORAGE EXTERNAL: no compression, so every value really is 50 KB in
	// the WAL and on the wire.
	c.exec(src, "CREATE TABLE wide (id int PRIMARY KEY, v int, payload text); ALTER TABLE wide ALTER payload SET STORAGE EXTERNAL")
	c.exec(src, fmt.Sprintf("INSERT INTO wide SELECT g, 0, repeat(md5(g::text), 1600) FROM generate_series(1, %d) g", n))
	tables := []string{"wide"}
	srv, rep := c.pgcdc("mem", "", "memory-snapshot-1")
	c.exec(rep, initSQL("mem", tables))
	snapPeak, err := vmHWM(srv.PID())
	if err != nil {
		t.Fatal(err)
	}
	// A new process on the same file, so that the peak is the stream's alone.
	c.stop(srv, "memory-snapshot-1", rep)
	srv, rep = c.pgcdcOn(pgcdctest.Options{Source: c.src.DSN("mem"), DuckDB: srv.DuckDB}, "", "memory-stream-1")
	c.exec(src, "UPDATE wide SET v = v + 1, payload = repeat(md5((id + 1)::text), 1600)")
	c.exec(rep, "SELECT * FROM replicate('mem', 'mem_pub')")
	streamPeak, err := vmHWM(srv.PID())
	if err != nil {
		t.Fatal(err)
	}
	checks := sourceChecks(c.ctx, t, src, map[string]string{"wide": "id"})
	verify(c.ctx, t, "memory: updates of 50 KB rows", rep, checks)
	c.stop(srv, "memory-stream-1", rep)
	t.Logf("memory: snapshot of %d rows of 50 KB: peak RSS %d MB; %d updates of 50 KB rows in one transaction: peak RSS %d MB", n, snapPeak>>20, n, streamPeak>>20)
	for _, m := range []struct {
		what string
		peak int64
	}{{fmt.Sprintf("memory: snapshot of %d rows of 50 KB", n), snapPeak}, {fmt.Sprintf("memory: %d updates of 50 KB rows in one transaction", n), streamPeak}} {
		c.out = append(c.out, outcome{what: m.what, contender: "pgcdc serve, defaults", value: fmt.Sprintf("%d MB peak RSS", m.peak>>20),
			limit: "600 MB", target: "< 600 MB", met: m.peak < 600<<20, ratio: float64(m.peak) / (600 << 20)})
	}
}

// ---- sustained ----

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// lagSamples are the lag readings of one trial, one a second while pgbench
// runs.
type lagSamples struct {
	bytes   []float64
	seconds []float64
}

func (l lagSamples) String() string {
	if len(l.bytes) == 0 {
		return "no lag samples"
	}
	s := fmt.Sprintf("lag during the load (%d samples): max %s, median %s", len(l.bytes), fmtBytes(slices.Max(l.bytes)), fmtBytes(median(l.bytes)))
	if len(l.seconds) > 0 {
		s += fmt.Sprintf("; max %.2fs, median %.2fs", slices.Max(l.seconds), median(l.seconds))
	}
	return s
}

func (c *ceilings) sustained() {
	t := c.t
	var rates []int
	for _, s := range strings.Split(*ceilRates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 1 {
			t.Fatalf("-ceilings.rates %q", *ceilRates)
		}
		rates = append(rates, r)
	}
	scale := max(1, int(math.Round(10**ceilScale)))
	src := c.createDB(c.src, "tpcb")
	pgbench := filepath.Join(c.bin, "pgbench")
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(c.src.Port), "-U", "postgres"}
	if _, err := runClient(c.ctx, pgbench, append(append([]string{"-i", "-q", "-I", "dtGvp", "-s", strconv.Itoa(scale)}, conn...), "tpcb")...); err != nil {
		t.Fatal(err)
	}
	c.exec(src, "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY")
	tables := []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}
	c.exec(src, "CREATE PUBLICATION native_tpcb FOR TABLE "+strings.Join(tables, ", "))

	// pgcdc: continuous replication, started once, paused while native's
	// trials run (on two cores, a contender replicating the other's load
	// would slow it down).
	srv, rep := c.pgcdc("tpcb", "", "sustained-1")
	c.exec(rep, initSQL("tpcb", tables))
	c.exec(rep, "SELECT * FROM start_replication('tpcb', 'tpcb_pub')")
	c.exec(rep, "SELECT * FROM pause_replication('tpcb')")
	// Native: a subscription with its initial copy done, disabled between
	// its trials.
	dst := c.createDB(c.dst, "tpcb_native")
	if _, err := runClient(c.ctx, pgbench, "-i", "-q", "-I", "dtp", "-h", "127.0.0.1", "-p", strconv.Itoa(c.dst.Port), "-U", "postgres", "tpcb_native"); err != nil {
		t.Fatal(err)
	}
	c.exec(dst, "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY")
	c.exec(dst, fmt.Sprintf("CREATE SUBSCRIPTION tpcb_native CONNECTION '%s' PUBLICATION native_tpcb", c.src.DSN("tpcb")))
	c.waitSubscriptionReady(dst)
	c.exec(dst, "ALTER SUBSCRIPTION tpcb_native DISABLE")
	// Connections of their own for the lag samples, taken while pgbench runs.
	monPgcdc := srv.Connect(c.ctx, t)
	monSrc := c.connect(c.src, "tpcb")

	lsn := func() string {
		var l string
		if err := src.QueryRow(c.ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	// caughtUp waits until slot is confirmed up to end, up to limit. A
	// slot is confirmed only up to what its replica has committed (pgcdc's
	// invariant 1; the native apply worker's flush feedback), so this is
	// what the replica holds at the least.
	caughtUp := func(slot, end string, limit time.Duration) (time.Duration, bool) {
		start := time.Now()
		for time.Since(start) < limit {
			var ok bool
			if err := src.QueryRow(c.ctx, "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1", slot, end).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				return time.Since(start), true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start), false
	}
	// sample reads one contender's lag: pgcdc's from replication_status()
	// (lag_bytes, the source's WAL insert position minus the slot's
	// confirmed position, and lag_seconds), native's from the source's
	// pg_stat_replication (the WAL insert position minus replay_lsn, and
	// replay_lag, NULL once it has caught up).
	sample := func(who string) (bytes float64, seconds *float64, ok bool, err error) {
		var b *int64
		if who == "pgcdc" {
			err = monPgcdc.QueryRow(c.ctx, "SELECT lag_bytes, lag_seconds FROM replication_status('tpcb')").Scan(&b, &seconds)
		} else {
			err = monSrc.QueryRow(c.ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn)::bigint, coalesce(extract(epoch FROM replay_lag), 0)::float8
				FROM pg_stat_replication WHERE application_name = 'tpcb_native'`).Scan(&b, &seconds)
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, nil, false, nil // the apply worker is not connected yet
			}
		}
		if err != nil || b == nil {
			return 0, nil, false, err
		}
		return float64(*b), seconds, true, nil
	}
	// sampleLag samples who's lag every second until stop.
	sampleLag := func(who string) (stop func() lagSamples) {
		quit, done := make(chan struct{}), make(chan lagSamples, 1)
		go func() {
			var l lagSamples
			var failed error
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-quit:
					if failed != nil {
						t.Errorf("sampling %s's lag: %v", who, failed)
					}
					done <- l
					return
				case <-tick.C:
				}
				if failed != nil {
					continue
				}
				b, s, ok, err := sample(who)
				if err != nil {
					failed = err
					continue
				}
				if ok {
					l.bytes = append(l.bytes, b)
					if s != nil {
						l.seconds = append(l.seconds, *s)
					}
				}
			}
		}()
		return func() lagSamples { close(quit); return <-done }
	}
	// run lets who replicate: pgcdc's continuous slot is resumed, native's
	// subscription enabled; pause undoes it.
	run := func(who string) (pause func()) {
		if who == "pgcdc" {
			c.exec(rep, "SELECT * FROM resume_replication('tpcb')")
			return func() { c.exec(rep, "SELECT * FROM pause_replication('tpcb')") }
		}
		c.exec(dst, "ALTER SUBSCRIPTION tpcb_native ENABLE")
		return func() { c.exec(dst, "ALTER SUBSCRIPTION tpcb_native DISABLE") }
	}
	slotOf := map[string]string{"pgcdc": "tpcb", "native": "tpcb_native"}
	trial := func(who string, rate int) (tps float64, catchup time.Duration, ok bool, lag lagSamples) {
		slot := slotOf[who]
		defer run(who)()
		// Start from a replica that has caught up.
		if _, ok := caughtUp(slot, lsn(), 5*time.Minute); !ok {
			t.Fatalf("%s did not catch up before its trial", who)
		}
		stopSampling := sampleLag(who)
		out, err := runClient(c.ctx, pgbench, append(append([]string{"-n", "-b", "tpcb-like", "-c", "4", "-j", "2",
			"-R", strconv.Itoa(rate), "-T", strconv.Itoa(int(ceilTime.Seconds()))}, conn...), "tpcb")...)
		lag = stopSampling()
		if err != nil {
			t.Fatal(err)
		}
		m := tpsRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no tps in pgbench's output:\n%s", out)
		}
		tps, _ = strconv.ParseFloat(m[1], 64)
		catchup, ok = caughtUp(slot, lsn(), *ceilLag)
		return tps, catchup, ok, lag
	}
	// best is the highest throughput pgbench measured at which the replica
	// kept up. A contender leaves the ladder when it falls behind, or when
	// the source itself no longer reaches the rate (then the machine, not the
	// replica, is the limit).
	best := map[string]float64{}
	bestLag := map[string]lagSamples{}
	alive := map[string]bool{"pgcdc": true, "native": true}
	why := map[string]string{"pgcdc": "the highest rate tried", "native": "the highest rate tried"}
	var lines []string
	for i, rate := range rates {
		who := []string{"pgcdc", "native"}
		if i%2 == 1 {
			who = []string{"native", "pgcdc"}
		}
		for _, w := range who {
			if !alive[w] {
				continue
			}
			tps, catchup, ok, lag := trial(w, rate)
			line := fmt.Sprintf("-R %d, %s: pgbench %.0f tps, %s, caught up %s after the load", rate, w, tps, lag,
				map[bool]string{true: fmt.Sprintf("in %.1fs", catchup.Seconds()), false: fmt.Sprintf("not within %s", *ceilLag)}[ok])
			switch {
			case !ok:
				alive[w], why[w] = false, ""
			case tps < 0.8*float64(rate):
				// On a shared machine the contender's own CPU counts
				// against the source, so this is the source's limit
				// with this contender running.
				line += " (the source fell short of the rate with it running)"
				alive[w], why[w] = false, "the source's limit with it running"
			}
			if ok && tps > best[w] {
				best[w], bestLag[w] = tps, lag
			}
			t.Log("sustained: " + line)
			lines = append(lines, line)
		}
		if !alive["pgcdc"] && !alive["native"] {
			break
		}
	}

	// Both replicas, caught up with the quiet source, hold what it holds.
	checks := sourceChecks(c.ctx, t, src, map[string]string{"pgbench_accounts": "aid", "pgbench_branches": "bid", "pgbench_tellers": "tid", "pgbench_history": "hid"})
	end := lsn()
	for _, w := range []string{"pgcdc", "native"} {
		pause := run(w)
		if _, ok := caughtUp(slotOf[w], end, 5*time.Minute); !ok {
			t.Fatalf("sustained: %s did not catch up with the source after the ladder", w)
		}
		if w == "pgcdc" {
			verify(c.ctx, t, "sustained: pgcdc's replica", rep, checks)
			c.exec(rep, "SELECT * FROM stop_replication('tpcb')")
		} else {
			verify(c.ctx, t, "sustained: native's replica", dst, checks)
			pause()
		}
	}
	t.Logf("sustained: both replicas equal the source after the ladder (%d rows in all)", func() (n int64) {
		for _, ch := range checks {
			n += ch.rows
		}
		return n
	}())
	c.stop(srv, "sustained-1", rep, monPgcdc)
	c.exec(dst, "DROP SUBSCRIPTION tpcb_native")
	val := func(w string) string {
		if best[w] == 0 {
			return fmt.Sprintf("fell behind at -R %d", rates[0])
		}
		s := fmt.Sprintf("%.0f tps", best[w])
		if why[w] != "" {
			s = "≥ " + s + " (" + why[w] + ")"
		}
		return s
	}
	ratio := 0.0
	if best["native"] > 0 {
		ratio = best["pgcdc"] / best["native"]
	}
	note := fmt.Sprintf("at its best rate, pgcdc's %s; native's %s", bestLag["pgcdc"], bestLag["native"])
	c.out = append(c.out, outcome{what: fmt.Sprintf("sustained pgbench TPC-B (-s %d, -c 4), into DuckDB", scale), contender: "start_replication() (continuous)", ceiling: "native logical replication",
		value: val("pgcdc"), limit: val("native"), ratio: ratio, target: "report against native", info: true, note: note, details: lines})
}

// fmtBytes renders a byte count for people.
func fmtBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f kB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// ---- report ----

func (c *ceilings) report(took time.Duration) {
	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "scale %g, %d runs each (medians), %d CPUs (%s/%s), %s, took %s, load average at the end %s\n\n", *ceilScale, c.runs,
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), took.Round(time.Second), strings.Join(strings.Fields(string(load))[:3], " "))
	b.WriteString("| benchmark | pgcdc | ceiling | pgcdc (median) | ceiling (median) | ratio | target | met |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, o := range c.out {
		met := "met"
		if !o.met {
			met = "**not met**"
		}
		if o.info {
			met = "—"
		}
		if o.cont != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f s | %.2f s | %.2f | %s | %s |\n", o.what, o.contender, o.ceiling,
				medianDur(o.cont).Seconds(), medianDur(o.ceil).Seconds(), o.ratio, o.target, met)
		} else {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f | %s | %s |\n", o.what, o.contender, o.ceiling, o.value, o.limit, o.ratio, o.target, met)
		}
	}
	b.WriteString("\nRaw times, run by run (seconds), pgcdc / ceiling:\n\n")
	for _, o := range c.out {
		if o.cont != nil {
			fmt.Fprintf(&b, "- %s: %s / %s", o.what, secs(o.cont), secs(o.ceil))
		} else {
			fmt.Fprintf(&b, "- %s: %s / %s", o.what, o.value, o.limit)
		}
		if o.note != "" {
			fmt.Fprintf(&b, " (%s)", o.note)
		}
		b.WriteString("\n")
		for _, d := range o.details {
			fmt.Fprintf(&b, "  - %s\n", d)
		}
	}
	c.t.Logf("\n%s", b.String())
}
