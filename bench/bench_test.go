package bench_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

var source *pgtest.Cluster

// TestMain starts a source only when benchmarks run, so go test ./... pays
// nothing for this package.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		code := m.Run() // the ceilings and pgbench tests start what they need
		pgcdctest.RemoveBinary()
		os.Exit(code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	source = c
	code := m.Run()
	c.Stop()
	pgcdctest.RemoveBinary()
	os.Exit(code)
}

const rows = 200_000

const table = `CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, tags text[], doc jsonb);
INSERT INTO t SELECT g, 'name ' || g, g / 7.0, '2026-01-01'::timestamptz + g * interval '1 minute',
	ARRAY['a' || g % 10, 'b'], jsonb_build_object('g', g) FROM generate_series(1, ` + "200000" + `) g;
ANALYZE t;`

var runs int

func setup(ctx context.Context, b *testing.B, name string) (string, *pgx.Conn) {
	b.Helper()
	// The testing package calls a benchmark once per b.N it tries.
	runs++
	name = fmt.Sprintf("%s_%d", name, runs)
	if err := source.CreateDatabase(ctx, name); err != nil {
		b.Fatal(err)
	}
	dsn := source.DSN(name)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, table); err != nil {
		b.Fatal(err)
	}
	return dsn, conn
}

func exec(ctx context.Context, b *testing.B, c *pgx.Conn, sql string) {
	b.Helper()
	if _, err := c.Exec(ctx, sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

// BenchmarkSnapshot: pgcdc's snapshot into DuckDB vs reading the table.
func BenchmarkSnapshot(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn, src := setup(ctx, b, "bench_snapshot")
	defer src.Close(ctx)
	var pgcdcTime, copyTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := src.PgConn().CopyTo(ctx, io.Discard, "COPY t TO STDOUT"); err != nil {
			b.Fatal(err)
		}
		copyTime += time.Since(start)

		srv := pgcdctest.Start(b, pgcdctest.Options{Source: dsn})
		rep := srv.Connect(ctx, b)
		slot := fmt.Sprintf("snap%d_%d", runs, i)
		start = time.Now()
		exec(ctx, b, rep, fmt.Sprintf("SELECT * FROM init_replication('%s', '%s_pub', table_names => 't', persist_snapshots => true)", slot, slot))
		pgcdcTime += time.Since(start)
		rep.Close(ctx)
		srv.Kill()
		exec(ctx, b, src, fmt.Sprintf("SELECT pg_drop_replication_slot('%s'); DROP PUBLICATION %s_pub", slot, slot))
	}
	report(b, pgcdcTime, copyTime, rows)
}

// BenchmarkStream: replicate() of 200k updates vs decoding them.
func BenchmarkStream(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn, src := setup(ctx, b, "bench_stream")
	defer src.Close(ctx)
	srv := pgcdctest.Start(b, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, b)
	slot := fmt.Sprintf("s%d", runs)
	exec(ctx, b, rep, fmt.Sprintf("SELECT * FROM init_replication('%s', 's_pub', table_names => 't', persist_snapshots => true)", slot))
	exec(ctx, b, src, fmt.Sprintf("SELECT pg_create_logical_replication_slot('%s_baseline', 'pgoutput')", slot))
	var pgcdcTime, decodeTime time.Duration
	for i := 0; i < b.N; i++ {
		// 100 transactions of 2,000 updates each.
		for j := 0; j < 100; j++ {
			exec(ctx, b, src, fmt.Sprintf("UPDATE t SET amount = amount + 1, name = name || '.' WHERE id %% 100 = %d", j))
		}
		start := time.Now()
		exec(ctx, b, src, fmt.Sprintf("SELECT count(*) FROM pg_logical_slot_get_binary_changes('%s_baseline', NULL, NULL, 'proto_version', '1', 'publication_names', 's_pub')", slot))
		decodeTime += time.Since(start)
		start = time.Now()
		exec(ctx, b, rep, fmt.Sprintf("SELECT * FROM replicate('%s', 's_pub', target_batch_size => 10000)", slot))
		pgcdcTime += time.Since(start)
	}
	report(b, pgcdcTime, decodeTime, rows)
}

// report prints throughput and the ratio to the baseline of the same run.
func report(b *testing.B, pgcdc, baseline time.Duration, perIter int) {
	n := float64(b.N * perIter)
	b.ReportMetric(n/pgcdc.Seconds(), "rows/s")
	b.ReportMetric(n/baseline.Seconds(), "baseline-rows/s")
	b.ReportMetric(pgcdc.Seconds()/baseline.Seconds(), "x-baseline")
	b.ReportMetric(0, "ns/op") // wall time per op mixes both; the metrics above say it
}
