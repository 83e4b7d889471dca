package replicator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// snapshotBenchTables are a pgbench_accounts-like table and a mixed-type
// one, the two shapes issue 10 measures the snapshot on.
var snapshotBenchTables = []struct {
	create string
	table  *replica.Table
}{
	{
		create: `CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler character(84));
INSERT INTO accounts SELECT g, g / 100000 + 1, 0, '' FROM generate_series(1, %d) g;`,
		table: &replica.Table{SourceSchema: "public", SourceName: "accounts", Schema: "public", Name: "accounts", Columns: []replica.Column{
			{Name: "aid", TypeOID: 23, TypeName: "integer", Key: true, Num: 1},
			{Name: "bid", TypeOID: 23, TypeName: "integer", Num: 2},
			{Name: "abalance", TypeOID: 23, TypeName: "integer", Num: 3},
			{Name: "filler", TypeOID: 1042, TypeMod: 88, TypeName: "character(84)", Num: 4},
		}},
	},
	{
		create: `CREATE TABLE mixed (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, d date, ok boolean, u uuid, f float8, tags text[], doc jsonb, b bytea);
INSERT INTO mixed SELECT g, 'name ' || g, g / 7.0, '2026-01-01'::timestamptz + g * interval '1 minute', '2020-01-01'::date + g %% 1000, g %% 2 = 0,
	md5(g::text)::uuid, g * 1.5, ARRAY['a' || g %% 10, 'b'], jsonb_build_object('g', g), decode(md5(g::text), 'hex') FROM generate_series(1, %d) g;`,
		table: &replica.Table{SourceSchema: "public", SourceName: "mixed", Schema: "public", Name: "mixed", Columns: []replica.Column{
			{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true, Num: 1},
			{Name: "name", TypeOID: 25, TypeName: "text", Num: 2},
			{Name: "amount", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4, TypeName: "numeric(12,2)", Num: 3},
			{Name: "at", TypeOID: 1184, TypeName: "timestamp with time zone", Num: 4},
			{Name: "d", TypeOID: 1082, TypeName: "date", Num: 5},
			{Name: "ok", TypeOID: 16, TypeName: "boolean", Num: 6},
			{Name: "u", TypeOID: 2950, TypeName: "uuid", Num: 7},
			{Name: "f", TypeOID: 701, TypeName: "double precision", Num: 8},
			{Name: "tags", TypeOID: 1009, ElemOID: 25, Dims: 1, TypeName: "text[]", Num: 9},
			{Name: "doc", TypeOID: 3802, TypeName: "jsonb", Num: 10},
			{Name: "b", TypeOID: 17, TypeName: "bytea", Num: 11},
		}},
	},
}

// BenchmarkSnapshotLoad measures the snapshot path in process: COPY from a
// source cluster into a DuckDB file, table by table in one destination
// transaction, against a binary COPY of the same tables to io.Discard (the
// ceiling), alternating the two in each iteration. It reports both
// throughputs and their ratio (median of the iterations). The row count is
// PGCDC_BENCH_ROWS (default 200000 per table); PGCDC_BENCH_DUCKDB=:memory:
// loads into an in-memory database instead of a file.
func BenchmarkSnapshotLoad(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	n := 200_000
	if s := os.Getenv("PGCDC_BENCH_ROWS"); s != "" {
		fmt.Sscan(s, &n)
	}
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables []*replica.Table
	for _, t := range snapshotBenchTables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(t.create, n)+" ANALYZE;"); err != nil {
			b.Fatal(err)
		}
		tables = append(tables, t.table)
	}
	path := filepath.Join(b.TempDir(), "bench.duckdb")
	if os.Getenv("PGCDC_BENCH_DUCKDB") == ":memory:" {
		path = ":memory:" // leaves out DuckDB's writes and fsyncs
	}
	d, err := duckdb.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var ratios []float64
	var total, ceiling, text, cpu, commit, ceilingCPU, sourceCPU time.Duration
	b.ReportAllocs()
	for b.Loop() {
		backend := conn.PgConn().PID()
		cpu0, bcpu0 := processCPU(), backendCPU(b, backend)
		start := time.Now()
		for _, t := range tables {
			if _, err := conn.PgConn().CopyTo(ctx, io.Discard, copySQL(t, 'r', " (FORMAT binary)")); err != nil {
				b.Fatal(err)
			}
		}
		base := time.Since(start)
		ceilingCPU += processCPU() - cpu0 + backendCPU(b, backend) - bcpu0
		start = time.Now()
		for _, t := range tables {
			if _, err := conn.PgConn().CopyTo(ctx, io.Discard, copySQL(t, 'r', "")); err != nil {
				b.Fatal(err)
			}
		}
		text += time.Since(start)
		cpu0, bcpu0 = processCPU(), backendCPU(b, backend)
		start = time.Now()
		tx, err := d.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range tables {
			if _, err := tx.EnsureTable(ctx, t); err != nil {
				b.Fatal(err)
			}
			if err := tx.Truncate(ctx, t); err != nil {
				b.Fatal(err)
			}
			got, err := copyTable(ctx, conn, tx, t, 'r', 0, 1, 64<<20, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if got != int64(n) {
				b.Fatalf("%s: copied %d rows, want %d", t.Name, got, n)
			}
		}
		commitStart := time.Now()
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		commit += time.Since(commitStart)
		took := time.Since(start)
		cpu += processCPU() - cpu0
		sourceCPU += backendCPU(b, backend) - bcpu0
		total += took
		ceiling += base
		ratios = append(ratios, base.Seconds()/took.Seconds())
	}
	sort.Float64s(ratios)
	rows := float64(b.N * n * len(tables))
	b.ReportMetric(rows/total.Seconds(), "rows/s")
	b.ReportMetric(rows/ceiling.Seconds(), "ceiling-rows/s")
	b.ReportMetric(rows/text.Seconds(), "text-copy-rows/s")
	b.ReportMetric(ratios[len(ratios)/2], "x-ceiling")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "pgcdc-cpu-s/op")
	b.ReportMetric(sourceCPU.Seconds()/float64(b.N), "source-cpu-s/op")
	b.ReportMetric(ceilingCPU.Seconds()/float64(b.N), "ceiling-cpu-s/op")
	b.ReportMetric(ceilingCPU.Seconds()/(cpu+sourceCPU).Seconds(), "x-ceiling-cpu")
	b.ReportMetric(commit.Seconds()/float64(b.N), "commit-s/op")
}

// processCPU is the CPU time this process has used, DuckDB's threads
// included (which the Go profiler does not see).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the CPU time the source backend with process id pid has
// used, from /proc (in clock ticks of 10 ms).
func backendCPU(b *testing.B, pid uint32) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
