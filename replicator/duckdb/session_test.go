package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/duckdb"

	"github.com/pgcdc/pgcdc/replicator/replica"
	pgsql "github.com/pgcdc/pgcdc/sql"
)

// openFile opens a destination in a DuckDB file, as pgcdc serve does.
func openFile(t *testing.T, opts ...duckdb.Option) *duckdb.Destination {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "replica.duckdb"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openSession(t *testing.T, d *duckdb.Destination) pgsql.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := d.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run prepares and runs one statement the way the router does, and renders
// the rows as text.
func run(s pgsql.Session, q string, args ...any) (rows []string, tag string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := s.Prepare(ctx, q)
	if err != nil {
		return nil, "", err
	}
	res, err := p.Query(ctx, args)
	if err != nil {
		return nil, "", err
	}
	defer res.Close()
	for {
		row, err := res.Next(ctx)
		if errors.Is(err, io.EOF) {
			return rows, res.Tag(), nil
		}
		if err != nil {
			return rows, "", err
		}
		parts := make([]string, len(row))
		for i, v := range row {
			parts[i] = fmt.Sprint(v)
		}
		rows = append(rows, strings.Join(parts, "|"))
	}
}

func mustRun(t *testing.T, s pgsql.Session, q string, args ...any) []string {
	t.Helper()
	rows, _, err := run(s, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// refused runs q and wants it to fail with one of codes.
func refused(t *testing.T, s pgsql.Session, q string, codes ...string) {
	t.Helper()
	_, _, err := run(s, q)
	if err == nil {
		t.Errorf("%s: ran, want SQLSTATE %s", q, strings.Join(codes, " or "))
		return
	}
	for _, c := range codes {
		if sqlstate(err) == c {
			return
		}
	}
	t.Errorf("%s: %v (SQLSTATE %q), want SQLSTATE %s", q, err, sqlstate(err), strings.Join(codes, " or "))
}

func engineValue(t *testing.T, d *duckdb.Destination, q string) string {
	t.Helper()
	var v any
	if err := d.DB().QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return fmt.Sprint(v)
}

// TestSessionConnectionsAreNotShared: what a client leaves on its
// connection dies with its session; the engine and later sessions never get
// that connection.
func TestSessionConnectionsAreNotShared(t *testing.T) {
	d := openFile(t)
	a := openSession(t, d)
	mustRun(t, a, "SET VARIABLE left_behind = 42")
	a.Close()
	if got := engineValue(t, d, "SELECT getvariable('left_behind')"); got != "<nil>" {
		t.Errorf("the engine sees a closed session's variable: %s", got)
	}
	b := openSession(t, d)
	if got := mustRun(t, b, "SELECT getvariable('left_behind')"); got[0] != "<nil>" {
		t.Errorf("a new session sees a closed session's variable: %s", got)
	}

	// A session that ends inside a transaction leaves nothing open.
	c := openSession(t, d)
	mustRun(t, c, "BEGIN")
	mustRun(t, c, "CREATE TABLE public.uncommitted (a INT)")
	c.Close()
	refused(t, b, "SELECT * FROM public.uncommitted", "42P01")
	mustRun(t, b, "CREATE TABLE public.committed (a INT)")
	if got := engineValue(t, d, "SELECT count(*) FROM public.committed"); got != "0" {
		t.Errorf("engine: %s", got)
	}
}

// TestOneStatementAtATime: text pgcdc could not split reaches DuckDB whole,
// and DuckDB's driver would run all but the last statement while
// preparing it. Nothing may run; the session stays out of any transaction.
func TestOneStatementAtATime(t *testing.T) {
	d := openFile(t)
	s := openSession(t, d)
	for _, q := range []string{
		"SELECT 1a; BEGIN TRANSACTION",
		"SELECT 1a; CREATE TABLE public.sneaked (a INT)",
		"BEGIN; SELECT 1a",
		"COMMIT; SELECT 1a",
	} {
		refused(t, s, q, "42601")
		if st := s.TxStatus(); st != 'I' {
			t.Errorf("%s: TxStatus %c, want I", q, st)
		}
	}
	refused(t, s, "SELECT * FROM public.sneaked", "42P01")
	// The session is not in a transaction that would freeze its snapshot:
	// what another session commits shows.
	other := openSession(t, d)
	mustRun(t, other, "CREATE TABLE public.later (a INT)")
	mustRun(t, s, "SELECT * FROM public.later")
	if got := mustRun(t, s, "SELECT 1a"); got[0] != "1" {
		t.Errorf("SELECT 1a = %v", got)
	}
}

// TestGlobalStateIsRefused: statements that change the database every
// session and the engine share are refused with 42501 (or 0A000), and
// change nothing.
func TestGlobalStateIsRefused(t *testing.T) {
	d := openFile(t)
	s := openSession(t, d)
	settings := engineValue(t, d, "SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM duckdb_settings()")
	databases := engineValue(t, d, "SELECT string_agg(database_name, ',' ORDER BY database_name) FROM duckdb_databases()")
	for _, q := range []string{
		"ATTACH ':memory:' AS other",
		"DETACH other",
		"USE main",
		"INSTALL json",
		"LOAD json",
		"FORCE INSTALL json",
		"UPDATE EXTENSIONS",
		"SET default_collation = 'nocase'",
		"SET memory_limit = '100MB'",
		"SET threads = 1",
		"SET GLOBAL threads = 1",
		"RESET threads",
		"PRAGMA threads = 1",
		"SET lock_configuration = false",
		"SET enable_external_access = true",
		"SET TimeZone = 'Asia/Tokyo'",
		"PRAGMA enable_progress_bar",
		"PRAGMA disable_checkpoint_on_shutdown",
		"PRAGMA enable_profiling",
		"SELECT * FROM enable_profiling()",
		"CALL enable_profiling()",
		"SELECT * FROM system.main.\"ENABLE_PROFILING\" /* */ ()",
		"SELECT * FROM enable_logging()",
		"FORCE CHECKPOINT",
		"CALL force_checkpoint()",
		"SELECT * FROM query('SELECT 1')",
		"SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
		"SELECT * FROM arrow_scan(1, 2, 3)",
		"EXPLAIN ANALYZE LOAD json",
		"EXPLAIN ANALYZE PRAGMA enable_profiling",
		"CREATE MACRO lower(x) AS 'shadowed'",
		"CREATE OR REPLACE MACRO main.\"String_Split\"(a, b) AS ['shadowed']",
		"CREATE MACRO txid_current() AS 1",
		"CREATE MACRO range(n) AS TABLE SELECT 1",
		"CREATE MACRO pgcdc_stage(n) AS TABLE SELECT 1",
		"CREATE TYPE json AS INTEGER",
		"CREATE TEMP MACRO array_to_string(a, b) AS 'x'",
	} {
		refused(t, s, q, "42501", "0A000")
	}
	for _, q := range []string{"EXPLAIN ANALYZE BEGIN", "EXPLAIN ANALYZE SET VARIABLE v = 1", "EXPLAIN SET search_path = 'main'"} {
		refused(t, s, q, "0A000")
	}
	if got := engineValue(t, d, "SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM duckdb_settings()"); got != settings {
		t.Errorf("settings changed")
	}
	if got := engineValue(t, d, "SELECT string_agg(database_name, ',' ORDER BY database_name) FROM duckdb_databases()"); got != databases {
		t.Errorf("databases: %s, was %s", got, databases)
	}
	if got := engineValue(t, d, "SELECT lower('X') || array_to_string(string_split('a,b', ','), '+')"); got != "xa+b" {
		t.Errorf("the engine's built-ins: %s", got)
	}

	// What a session may do to itself still works.
	for _, q := range []string{
		"SET search_path = 'main'",
		"SET schema = 'public'",
		"RESET search_path",
		"SET VARIABLE mine = 1",
		"SELECT getvariable('mine')",
		"SELECT CAST('{\"a\": [1, 2]}' AS JSON) -> 'a'",
		"SELECT CAST('2026-01-02 03:04:05+01' AS TIMESTAMPTZ)",
		"CREATE TABLE public.t (a INT PRIMARY KEY)",
		"PRAGMA table_info('public.t')",
		"PRAGMA show_tables",
		"DESCRIBE public.t",
		"SHOW TABLES",
		"SUMMARIZE public.t",
		"EXPLAIN SELECT * FROM public.t",
		"EXPLAIN ANALYZE SELECT * FROM public.t",
		"EXPLAIN (FORMAT json) SELECT 1",
		"EXPLAIN ANALYZE INSERT INTO public.t VALUES (1)",
		"CHECKPOINT",
		"CREATE MACRO plus_one(x) AS x + 1",
		"SELECT plus_one(1)",
		"CREATE TYPE mood AS ENUM ('happy', 'sad')",
		"SELECT * FROM query_table('public.t')",
		"SELECT 'copy to stdout is only words here' AS note",
	} {
		if _, _, err := run(s, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// TestTxStatusFromDuckDB: the transaction status follows DuckDB, with
// Postgres's rule on top that an error inside a block fails the block.
func TestTxStatusFromDuckDB(t *testing.T) {
	d := openFile(t)
	s := openSession(t, d)
	other := openSession(t, d)
	mustRun(t, s, "CREATE TABLE public.k (id INT PRIMARY KEY)")
	want := func(step string, st byte) {
		t.Helper()
		if got := s.TxStatus(); got != st {
			t.Fatalf("%s: TxStatus %c, want %c", step, got, st)
		}
	}
	steps := []struct {
		q      string
		status byte
		code   string // "" for success
		tag    string
	}{
		{"BEGIN", 'T', "", "BEGIN"},
		{"INSERT INTO public.k VALUES (1)", 'T', "", "INSERT 0 1"},
		{"BEGIN", 'T', "", "BEGIN"}, // Postgres warns and carries on
		{"COMMIT", 'I', "", "COMMIT"},
		{"COMMIT", 'I', "", "COMMIT"}, // outside a block: a warning in Postgres
		{"ROLLBACK", 'I', "", "ROLLBACK"},
		// An error DuckDB keeps the transaction alive after.
		{"BEGIN", 'T', "", "BEGIN"},
		{"SELECT error('boom')", 'E', "22P02", ""},
		{"SELECT 1", 'E', "25P02", ""},
		{"BEGIN", 'E', "25P02", ""},
		{"COMMIT", 'I', "", "ROLLBACK"},
		// An error DuckDB invalidates the transaction for.
		{"START TRANSACTION", 'T', "", "BEGIN"},
		{"INSERT INTO public.k VALUES (2)", 'T', "", "INSERT 0 1"},
		{"INSERT INTO public.k VALUES (1)", 'E', "23505", ""},
		{"ABORT", 'I', "", "ROLLBACK"},
		// Postgres spellings DuckDB does not parse.
		{"BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE", 'T', "", "BEGIN"},
		{"END", 'I', "", "COMMIT"},
		{"COMMIT AND CHAIN", 'I', "42601", ""},
		{"SAVEPOINT a", 'I', "42601", ""},
		// Snapshot isolation cannot promise SERIALIZABLE.
		{"BEGIN ISOLATION LEVEL SERIALIZABLE", 'I', "0A000", ""},
		// A refused statement inside a block fails it too.
		{"BEGIN", 'T', "", "BEGIN"},
		{"ATTACH ':memory:' AS x", 'E', "42501", ""},
		{"ROLLBACK", 'I', "", "ROLLBACK"},
		// Statements that would change the transaction behind pgcdc's back.
		{"EXPLAIN ANALYZE BEGIN", 'I', "0A000", ""},
		{"SELECT 1a; BEGIN TRANSACTION", 'I', "42601", ""},
	}
	for _, st := range steps {
		_, tag, err := run(s, st.q)
		switch {
		case st.code == "" && err != nil:
			t.Fatalf("%s: %v", st.q, err)
		case st.code != "" && sqlstate(err) != st.code:
			t.Fatalf("%s: %v (SQLSTATE %q), want SQLSTATE %s", st.q, err, sqlstate(err), st.code)
		case st.code == "" && tag != st.tag:
			t.Fatalf("%s: tag %q, want %q", st.q, tag, st.tag)
		}
		want(st.q, st.status)
	}
	if got := mustRun(t, other, "SELECT string_agg(CAST(id AS VARCHAR), ',' ORDER BY id) FROM public.k"); got[0] != "1" {
		t.Fatalf("committed rows: %v, want only 1", got)
	}
	// DuckDB agrees that no transaction is open: every statement gets a
	// new transaction id.
	a := mustRun(t, s, "SELECT txid_current()")
	b := mustRun(t, s, "SELECT txid_current()")
	if a[0] == b[0] {
		t.Fatalf("DuckDB still has a transaction open (txid %s twice)", a[0])
	}

	// An error that never reached DuckDB (the router's Abort) fails the
	// block too.
	mustRun(t, s, "BEGIN")
	s.(interface{ Abort() }).Abort()
	want("Abort", 'E')
	mustRun(t, s, "ROLLBACK")
	want("ROLLBACK after Abort", 'I')

	// A block sees what the engine committed before the block's first
	// query, as a client that calls replicate() and then reads expects.
	mustRun(t, s, "BEGIN")
	tx, err := d.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tbl := &replica.Table{Schema: "public", Name: "seen", Columns: []replica.Column{{Name: "id", TypeOID: 23, Key: true}}}
	if _, err := tx.EnsureTable(context.Background(), tbl); err != nil {
		t.Fatal(err)
	}
	if err := tx.Load(context.Background(), tbl, []replica.Row{row("7")}, 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, s, "SELECT id FROM public.seen"); len(got) != 1 || got[0] != "7" {
		t.Fatalf("inside the block: %v", got)
	}
	mustRun(t, s, "COMMIT")
}
