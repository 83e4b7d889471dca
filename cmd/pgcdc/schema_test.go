package main_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// sameTable compares every current source column of table with the
// replica, by name and as text, so a scenario follows the schema as it
// changes; and checks that the replica has no column the source does not,
// besides its own _pg_ columns.
func sameTable(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica, table, order string) {
	t.Helper()
	rows, err := src.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var srcCols, repCols []string
	for _, c := range cols {
		q := pgx.Identifier{c}.Sanitize()
		srcCols = append(srcCols, q+"::text")
		repCols = append(repCols, "CAST("+q+" AS VARCHAR)")
	}
	sameRows(ctx, t, src, r.data,
		"SELECT "+strings.Join(srcCols, ", ")+" FROM "+table+" ORDER BY "+order,
		"SELECT "+strings.Join(repCols, ", ")+" FROM "+table+" ORDER BY "+order)
	schema, name := splitTable(table)
	var extra []string
	for _, c := range rowsOf(ctx, t, r.data, r.d.columnsSQL, schema, name) {
		name, _, _ := strings.Cut(c, "|")
		if !strings.HasPrefix(name, "_pg_") && !slices.Contains(cols, name) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		t.Fatalf("replica of %s keeps columns the source dropped: %s", table, strings.Join(extra, ", "))
	}
}

// longStepKeepsStreamAlive: a backfill that takes longer than the source's
// wal_sender_timeout must not get the stream dropped, or every retry would
// repeat it.
func longStepKeepsStreamAlive(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": "'1s'"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	src, err := pgx.Connect(ctx, c.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	mustExec(ctx, t, src, `CREATE TABLE wide (id int PRIMARY KEY, v int, pad text);
		INSERT INTO wide SELECT g, g, repeat('p', 100) FROM generate_series(1, 1500000) g`)
	r := d.start(ctx, t, pgcdctest.Options{Source: c.DSN("")})
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('long', 'long_pub', table_names => 'wide', persist_snapshots => true)")
	// A rewrite: the whole column is backfilled from the source.
	mustExec(ctx, t, src, "ALTER TABLE wide ALTER COLUMN v TYPE text USING 'v' || v; UPDATE wide SET pad = 'x' WHERE id = 1")
	start := time.Now()
	callReplicate(ctx, t, r.pgcdc, "SELECT * FROM replicate('long', 'long_pub')")
	t.Logf("replicate with a 1.5M-row backfill took %v against a 1s wal_sender_timeout", time.Since(start))
	sameRows(ctx, t, src, r.data, "SELECT count(*), count(*) FILTER (WHERE v = 'v' || id) FROM wide", "SELECT count(*), count(*) FILTER (WHERE v = 'v' || id) FROM wide")
}
