package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// These tests hold pgcdc to invariant 8: a client session never shares
// connection state with the engine or another session, cannot write the
// replication state, and cannot reach the host's files.

// simple sends sql in one Query message, as psql does, and returns the
// first error.
func simple(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

func wantCode(ctx context.Context, t *testing.T, conn *pgx.Conn, code, sql string) {
	t.Helper()
	err := simple(ctx, conn, sql)
	if got := pgCode(err); got != code {
		t.Errorf("%s: %v (SQLSTATE %q), want SQLSTATE %s", sql, err, got, code)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after %s the session is unusable: %v", sql, err)
	}
}

const tagsSchema = `CREATE TABLE shop.tags (name text PRIMARY KEY, n int);
INSERT INTO shop.tags VALUES ('a', 1);`

func TestClientSessionsStayApart(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema+tagsSchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	b := srv.Connect(ctx, t)
	rowsOf(ctx, t, b, `SELECT table_name FROM init_replication('apart', 'apart_pub', schema_name => 'shop', persist_snapshots => true)`)

	a := srv.Connect(ctx, t)
	// Text the Postgres scanner cannot split reaches DuckDB whole: it must
	// not run, and above all not leave a transaction open.
	wantCode(ctx, t, a, "42601", "SELECT 1a; BEGIN TRANSACTION")
	// Settings, attachments and extensions belong to the whole database.
	wantCode(ctx, t, a, "42501", "SET default_collation = 'nocase'")
	wantCode(ctx, t, a, "42501", "ATTACH ':memory:' AS other; USE other")
	wantCode(ctx, t, a, "42501", "DETACH other")
	wantCode(ctx, t, a, "42501", "USE main")
	wantCode(ctx, t, a, "42501", "SET memory_limit = '64MB'; SET lock_configuration = true")
	wantCode(ctx, t, a, "42501", "LOAD json")
	wantCode(ctx, t, a, "42501", "CREATE MACRO lower(x) AS 'shadowed'")
	// What is the session's own works and stays its own.
	if err := simple(ctx, a, "SET search_path = 'shop'; SET VARIABLE mine = 1; BEGIN; CREATE TABLE public.uncommitted (x INT)"); err != nil {
		t.Fatal(err)
	}
	if st := a.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("TxStatus after BEGIN = %c", st)
	}
	a.Close(ctx)

	c := srv.Connect(ctx, t)
	mustExec(ctx, t, b, "CREATE TABLE public.made_by_b (x INT)")
	if got := rowsOf(ctx, t, c, "SELECT count(*) FROM public.made_by_b"); got[0] != "0" {
		t.Fatalf("another session's table: %v", got)
	}
	if got := rowsOf(ctx, t, c, "SELECT getvariable('mine'), current_setting('search_path')"); got[0] != "NULL|public,main" {
		t.Fatalf("a closed session's settings leaked: %v", got)
	}
	if err := simple(ctx, c, "SELECT * FROM public.uncommitted"); pgCode(err) != "42P01" {
		t.Fatalf("a closed session's uncommitted table: %v", err)
	}

	// replicate() merges exactly: keys that differ only in case stay apart.
	mustExec(ctx, t, src, `INSERT INTO shop.tags VALUES ('A', 2), ('b', 3), ('B', 4); UPDATE shop.tags SET n = 10 WHERE name = 'a';
		DELETE FROM shop.tags WHERE name = 'B'; INSERT INTO shop.customers VALUES (9, 'Nine', NULL)`)
	callReplicate(ctx, t, c, `SELECT * FROM replicate('apart', 'apart_pub')`)
	sameRows(ctx, t, src, c, `SELECT name, n FROM shop.tags ORDER BY name COLLATE "C"`, `SELECT name, n FROM shop.tags ORDER BY name`)
	sameRows(ctx, t, src, c, srcCustomers, repCustomers)
}

func TestReplicationStateIsReadOnly(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, t)
	rowsOf(ctx, t, rep, `SELECT table_name FROM init_replication('ro_state', 'ro_state_pub', schema_name => 'shop', persist_snapshots => true)`)
	mustExec(ctx, t, src, "INSERT INTO shop.customers VALUES (10, 'Ten', NULL)")
	callReplicate(ctx, t, rep, `SELECT * FROM replicate('ro_state', 'ro_state_pub')`)

	// Whatever tables the state has, a client may read them and nothing
	// else.
	tables := rowsOf(ctx, t, rep, "SELECT table_name FROM duckdb_tables() WHERE schema_name = '_pgcdc' ORDER BY 1")
	if len(tables) == 0 {
		t.Fatal("no state tables to attack")
	}
	snapshot := func() string {
		var b strings.Builder
		for _, tbl := range tables {
			b.WriteString(tbl + ": " + strings.Join(rowsOf(ctx, t, rep, `SELECT * FROM _pgcdc."`+tbl+`" ORDER BY ALL`), ";") + "\n")
		}
		return b.String()
	}
	before := snapshot()
	db := rowsOf(ctx, t, rep, "SELECT current_database()")[0]
	attacker := srv.Connect(ctx, t)
	for _, tbl := range tables {
		col := rowsOf(ctx, t, rep, "SELECT column_name FROM duckdb_columns() WHERE schema_name = '_pgcdc' AND table_name = $1 ORDER BY column_index LIMIT 1", tbl)[0]
		for _, q := range []string{
			`UPDATE _pgcdc."` + tbl + `" SET "` + col + `" = NULL`,
			`UPDATE "_PgCdC"."` + strings.ToUpper(tbl) + `" SET "` + col + `" = NULL`,
			`DELETE FROM ` + db + `._pgcdc."` + tbl + `"`,
			`INSERT INTO _pgcdc."` + tbl + `" SELECT * FROM _pgcdc."` + tbl + `"`,
			`TRUNCATE _pgcdc."` + tbl + `"`,
			`DROP TABLE _pgcdc."` + tbl + `"`,
			`CREATE OR REPLACE TABLE _pgcdc."` + tbl + `" AS SELECT 1 AS x`,
			`ALTER TABLE _pgcdc."` + tbl + `" RENAME TO gone`,
			`EXPLAIN ANALYZE DELETE FROM _pgcdc."` + tbl + `"`,
		} {
			wantCode(ctx, t, attacker, "42501", q)
		}
	}
	for _, q := range []string{
		"DROP SCHEMA _pgcdc CASCADE",
		"SET search_path = '_pgcdc'",
		"SET search_path = concat('_pg', 'cdc')",
		"SET schema = '_pgcdc'",
	} {
		wantCode(ctx, t, attacker, "42501", q)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the state changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	// The state still says where to continue and where the tables go.
	mustExec(ctx, t, src, "INSERT INTO shop.customers VALUES (11, 'Eleven', NULL); UPDATE shop.orders SET note = 'later' WHERE id = 1")
	callReplicate(ctx, t, attacker, `SELECT * FROM replicate('ro_state', 'ro_state_pub')`)
	sameRows(ctx, t, src, rep, srcCustomers, repCustomers)
	sameRows(ctx, t, src, rep, srcOrders, repOrders)
}

func TestHostFilesAreOutOfReach(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, t)
	mustExec(ctx, t, rep, "CREATE TABLE public.t AS SELECT 'row-in-t' AS v")
	dir := t.TempDir()
	for _, q := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_text('/etc/hostname')",
		"SELECT * FROM glob('/root/*')",
		"COPY public.t TO '" + filepath.Join(dir, "out.csv") + "'",
		"COPY public.t FROM '/etc/hostname'",
		"ATTACH '" + filepath.Join(dir, "other.duckdb") + "' AS other",
		"INSTALL httpfs",
	} {
		wantCode(ctx, t, rep, "42501", q)
	}
	for _, name := range []string{"out.csv", "other.duckdb"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("a client wrote %s", name)
		}
	}
	// COPY's STDIN and STDOUT are the client's (the COPY protocol), never
	// pgcdc's own.
	for _, q := range []string{"COPY (SELECT 'marker-7f3a' AS m) TO STDOUT", "COPY public.t TO STDOUT (FORMAT csv)"} {
		if got, _ := copyTo(ctx, t, rep, q); !strings.Contains(got, "marker-7f3a") && !strings.Contains(got, "row-in-t") {
			t.Errorf("%s: the client got %q", q, got)
		}
	}
	if logs := srv.Logs(); strings.Contains(logs, "marker-7f3a") || strings.Contains(logs, "row-in-t") {
		t.Fatalf("a client's COPY reached pgcdc's standard output:\n%s", logs)
	}
	// DuckDB lets every connection reach the database's own files even
	// with external access off.
	for _, f := range []string{srv.DuckDB, srv.DuckDB + ".wal"} {
		wantCode(ctx, t, rep, "42501", "COPY (SELECT 'evil' AS x) TO '"+f+"' (FORMAT csv, USE_TMP_FILE false)")
	}
	rep.Close(ctx)
	srv.Kill()
	srv.Restart(t)
	if got := rowsOf(ctx, t, srv.Connect(ctx, t), "SELECT v FROM public.t"); len(got) != 1 || got[0] != "row-in-t" {
		t.Fatalf("the replica after a restart: %v", got)
	}
}

func TestUnsafeClientFileAccessFlag(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn, Env: []string{"PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS=true"}})
	if !srv.LogsContain("unsafe-allow-client-file-access is on", 5*time.Second) {
		t.Errorf("no start-up warning:\n%s", srv.Logs())
	}
	rep := srv.Connect(ctx, t)
	out := filepath.Join(t.TempDir(), "out.csv")
	if err := simple(ctx, rep, "COPY (SELECT 42 AS answer) TO '"+out+"'"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "42") {
		t.Fatalf("%s: %q %v", out, b, err)
	}
	if got, _ := copyTo(ctx, t, rep, "COPY (SELECT 'marker-9c1d' AS m) TO STDOUT"); got != "marker-9c1d\n" {
		t.Errorf("COPY TO STDOUT: the client got %q", got)
	}
	wantCode(ctx, t, rep, "42501", "COPY (SELECT 'marker-9c1d' AS m) TO '/dev/stdout'")
	wantCode(ctx, t, rep, "42501", "COPY (SELECT 'marker-9c1d' AS m) TO '/proc/self/fd/2'")
	wantCode(ctx, t, rep, "42501", "DROP SCHEMA _pgcdc CASCADE")
	if strings.Contains(srv.Logs(), "marker-9c1d") {
		t.Fatalf("a client's COPY reached pgcdc's standard streams:\n%s", srv.Logs())
	}

	// The flag says what it allows, and a variable that is not a boolean
	// is an error rather than silently off.
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	help, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	for _, want := range []string{"--unsafe-allow-client-file-access", "PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS", "read and write any file"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("--help does not mention %q:\n%s", want, help)
		}
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "--source", dsn)
	cmd.Env = append(os.Environ(), "PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS=maybe")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS") {
		t.Errorf("PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS=maybe: %v\n%s", err, out)
	}
}
