package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// sameTable compares every current source column of table with the replica,
// by name, so the test follows the schema as it changes.
func sameTable(ctx context.Context, t *testing.T, src, rep *pgx.Conn, table, order string) {
	t.Helper()
	var cols []string
	rows, err := src.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var srcCols, repCols []string
	for _, c := range cols {
		q := pgx.Identifier{c}.Sanitize()
		srcCols = append(srcCols, q+"::text")
		repCols = append(repCols, "CAST("+q+" AS VARCHAR)")
	}
	sameRows(ctx, t, src, rep,
		"SELECT "+strings.Join(srcCols, ", ")+" FROM "+table+" ORDER BY "+order,
		"SELECT "+strings.Join(repCols, ", ")+" FROM "+table+" ORDER BY "+order)
	// And the replica has no column the source does not.
	var extra string
	if err := rep.QueryRow(ctx, `SELECT COALESCE(string_agg(column_name, ','), '') FROM duckdb_columns()
		WHERE table_name = $1 AND column_name NOT LIKE '\_pg\_%' ESCAPE '\' AND NOT list_contains(string_split($2, ','), column_name)`,
		table, strings.Join(cols, ",")).Scan(&extra); err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		t.Fatalf("replica of %s keeps columns the source dropped: %s", table, extra)
	}
}

func TestSchemaChanges(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE sc (id int PRIMARY KEY, a int, b text);
		INSERT INTO sc VALUES (1, 10, 'one'), (2, 20, 'two')`)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('sc', 'sc_pub', table_names => 'sc', persist_snapshots => true)")

	// Changes before and after each DDL in one call, so the schema changes
	// in the middle of a batch.
	mustExec(ctx, t, src, `INSERT INTO sc VALUES (3, 30, 'three');
		ALTER TABLE sc ADD COLUMN c int;
		INSERT INTO sc VALUES (4, 40, 'four', 4);
		ALTER TABLE sc ADD COLUMN d int NOT NULL DEFAULT 5;
		UPDATE sc SET d = 6 WHERE id = 1;
		INSERT INTO sc (id, a) VALUES (5, 50)`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('sc', 'sc_pub')")
	sameTable(ctx, t, src, rep, "sc", "id")

	mustExec(ctx, t, src, `ALTER TABLE sc DROP COLUMN b;
		UPDATE sc SET a = a + 1 WHERE id = 2;
		ALTER TABLE sc RENAME COLUMN a TO a2;
		UPDATE sc SET a2 = a2 + 1 WHERE id = 3;
		ALTER TABLE sc ALTER COLUMN c TYPE bigint;
		ALTER TABLE sc ALTER COLUMN a2 TYPE text USING 'v' || a2;
		INSERT INTO sc (id, a2, c) VALUES (6, 'six', 9000000000)`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('sc', 'sc_pub', target_batch_size => 2)")
	sameTable(ctx, t, src, rep, "sc", "id")

	// A schema change in the middle of a transaction.
	mustExec(ctx, t, src, `BEGIN; INSERT INTO sc (id, a2) VALUES (7, 'seven');
		ALTER TABLE sc ADD COLUMN e text DEFAULT 'dflt';
		INSERT INTO sc (id, a2, e) VALUES (8, 'eight', 'E'); UPDATE sc SET e = 'changed' WHERE id = 1; COMMIT`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('sc', 'sc_pub')")
	sameTable(ctx, t, src, rep, "sc", "id")

	// Rewrites without WAL: a volatile default. A stored generated column is
	// not in pgoutput's stream before Postgres 18, so it is not replicated.
	mustExec(ctx, t, src, `ALTER TABLE sc ADD COLUMN r float8 DEFAULT random();
		ALTER TABLE sc ADD COLUMN g text GENERATED ALWAYS AS (a2 || '!') STORED;
		INSERT INTO sc (id, a2) VALUES (9, 'nine')`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('sc', 'sc_pub')")
	sameTable(ctx, t, src, rep, "sc", "id")
}

// TestRenameChainsAndReAddedColumns: columns follow their attnum through a
// chain and a swap of renames, and a column dropped and added again under
// the same name starts empty. Also an append-only table that gets two
// columns in one call (a fill, then an ALTER).
func TestRenameChainsAndReAddedColumns(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE rc (id int PRIMARY KEY, a text, b text, c text, d text);
		INSERT INTO rc VALUES (1, 'A', 'B', 'C', 'D'), (2, 'a', 'b', 'c', 'd');
		CREATE TABLE ev (id int, note text); INSERT INTO ev VALUES (1, 'a')`)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('rc', 'rc_pub', table_names => 'rc', persist_snapshots => true)")
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('ev', 'ev_pub', table_names => 'ev', publish => 'insert', persist_snapshots => true)")
	mustExec(ctx, t, src, `ALTER TABLE rc RENAME COLUMN c TO e; ALTER TABLE rc RENAME COLUMN b TO c; ALTER TABLE rc RENAME COLUMN a TO b;
		ALTER TABLE rc DROP COLUMN d; ALTER TABLE rc ADD COLUMN d text;
		INSERT INTO rc (id, b, c, e, d) VALUES (3, 'x', 'y', 'z', 'new');
		ALTER TABLE ev ADD COLUMN x int DEFAULT 5; INSERT INTO ev VALUES (2, 'b', 6);
		ALTER TABLE ev ADD COLUMN y int; INSERT INTO ev VALUES (3, 'c', 7, 8)`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('rc', 'rc_pub')")
	sameTable(ctx, t, src, rep, "rc", "id")
	// Swap two columns through a third name, after the table was modified
	// in the same call.
	mustExec(ctx, t, src, `UPDATE rc SET b = 'X' WHERE id = 3; ALTER TABLE rc RENAME COLUMN b TO tmp; ALTER TABLE rc RENAME COLUMN c TO b;
		ALTER TABLE rc RENAME COLUMN tmp TO c; UPDATE rc SET e = 'Z' WHERE id = 3`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('rc', 'rc_pub')")
	sameTable(ctx, t, src, rep, "rc", "id")
	for i := 0; i < 2; i++ { // a stuck table fails every call, not just the first
		callReplicate(ctx, t, rep, "SELECT * FROM replicate('ev', 'ev_pub')")
	}
	sameTable(ctx, t, src, rep, "ev", "id")
}

// TestLongStepKeepsStreamAlive: a backfill that takes longer than the
// source's wal_sender_timeout must not get the stream dropped, or every
// retry would repeat it.
func TestLongStepKeepsStreamAlive(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": "'300ms'"}})
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
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: c.DSN("")})
	rep := srv.Connect(ctx, t)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('long', 'long_pub', table_names => 'wide', persist_snapshots => true)")
	// A rewrite: the whole column is backfilled from the source.
	mustExec(ctx, t, src, "ALTER TABLE wide ALTER COLUMN v TYPE text USING 'v' || v; UPDATE wide SET pad = 'x' WHERE id = 1")
	start := time.Now()
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('long', 'long_pub')")
	t.Logf("replicate with a 1.5M-row backfill took %v against a 300ms wal_sender_timeout", time.Since(start))
	sameRows(ctx, t, src, rep, "SELECT count(*), count(*) FILTER (WHERE v = 'v' || id) FROM wide", "SELECT count(*), count(*) FILTER (WHERE v = 'v' || id) FROM wide")
}
