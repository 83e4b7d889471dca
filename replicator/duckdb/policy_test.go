package duckdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
	pgsql "github.com/pgcdc/pgcdc/sql"
)

// stateSnapshot renders everything in schema _pgcdc: its objects, their
// columns and every table's rows, so that a test can tell whether a client
// changed any of it without knowing the tables' design.
func stateSnapshot(t *testing.T, d *duckdb.Destination) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(dump(t, d, `SELECT 'schema', schema_name FROM duckdb_schemas() WHERE schema_name = '_pgcdc'`))
	b.WriteString(dump(t, d, `SELECT 'column', table_name, column_name, data_type, column_index FROM duckdb_columns()
		WHERE schema_name = '_pgcdc' ORDER BY table_name, column_index`))
	for _, q := range []string{"duckdb_views()", "duckdb_sequences()", "duckdb_indexes()", "duckdb_constraints()"} {
		b.WriteString(dump(t, d, "SELECT * FROM "+q+" WHERE schema_name = '_pgcdc'"))
	}
	b.WriteString(dump(t, d, "SELECT function_name FROM duckdb_functions() WHERE schema_name = '_pgcdc'"))
	for _, tbl := range strings.Split(dump(t, d, `SELECT table_name FROM duckdb_tables() WHERE schema_name = '_pgcdc' ORDER BY 1`), ";") {
		if tbl != "" {
			b.WriteString("\n" + tbl + ": " + dump(t, d, `SELECT * FROM _pgcdc."`+tbl+`" ORDER BY ALL`))
		}
	}
	return b.String()
}

// TestStateSchemaIsReadOnlyForClients: a client may read schema _pgcdc,
// where pgcdc keeps its replication state, and do nothing else to it, by
// any spelling. The rule is deliberately simple (doc.go): a statement whose
// text mentions _pgcdc must be a SELECT, and the search path can never
// reach it.
func TestStateSchemaIsReadOnlyForClients(t *testing.T) {
	d := openFile(t)
	// A table of the engine's, whatever the state tables are called.
	if _, err := d.DB().Exec(`CREATE TABLE _pgcdc.guard (slot VARCHAR, lsn UBIGINT); INSERT INTO _pgcdc.guard VALUES ('s1', 100)`); err != nil {
		t.Fatal(err)
	}
	db := engineValue(t, d, "SELECT current_database()")
	rows := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(rows, []byte("slot,lsn\nevil,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := stateSnapshot(t, d)

	attacks := [][]string{
		{"INSERT INTO _pgcdc.guard VALUES ('evil', 1)"},
		{"UPDATE _pgcdc.guard SET lsn = lsn + 1000000"},
		{"DELETE FROM _pgcdc.guard"},
		{"TRUNCATE _pgcdc.guard"},
		{"DROP TABLE _pgcdc.guard"},
		{"DROP SCHEMA _pgcdc CASCADE"},
		{"ALTER TABLE _pgcdc.guard ADD COLUMN x INT"},
		{"ALTER TABLE _pgcdc.guard RENAME TO moved"},
		{"ALTER SCHEMA _pgcdc RENAME TO moved"},
		{"CREATE TABLE _pgcdc.extra (a INT)"},
		{"CREATE OR REPLACE TABLE _pgcdc.guard AS SELECT 'evil' AS slot, 1 AS lsn"},
		{"CREATE VIEW _pgcdc.v AS SELECT 1"},
		{"CREATE MACRO _pgcdc.m() AS 1"},
		{"CREATE SEQUENCE _pgcdc.s"},
		{"CREATE INDEX i ON _pgcdc.guard (lsn)"},
		{"COMMENT ON TABLE _pgcdc.guard IS 'mine'"},
		{"COPY _pgcdc.guard FROM '" + rows + "'"},
		{"UPDATE \"_PgCdC\".\"GUARD\" SET lsn = 0"},
		{"update _PGCDC.Guard set lsn = 0"},
		{"DELETE FROM " + db + "._pgcdc.guard"},
		{`DELETE FROM "` + db + `"."_pgcdc"."guard"`},
		{"/* a comment first */ DELETE FROM _pgcdc.guard"},
		{"WITH x AS (SELECT 1) DELETE FROM _pgcdc.guard"},
		{"INSERT INTO _pgcdc.guard SELECT * FROM _pgcdc.guard"},
		{"MERGE INTO _pgcdc.guard USING (SELECT 's1' AS slot) s ON guard.slot = s.slot WHEN MATCHED THEN DELETE"},
		{"EXPLAIN ANALYZE DELETE FROM _pgcdc.guard"},
		{"EXPLAIN ANALYZE UPDATE _pgcdc.guard SET lsn = 0"},
		{"PREPARE p AS DELETE FROM _pgcdc.guard", "EXECUTE p"},
		{"SELECT * FROM query('DELETE FROM _pgcdc.guard')"},
		// Unqualified names that would resolve into _pgcdc.
		{"SET search_path = '_pgcdc'", "DELETE FROM guard"},
		{"SET search_path = 'public,\"_PGCDC\"'", "DELETE FROM guard"},
		{"SET search_path = concat('_pg', 'cdc')", "DELETE FROM guard"},
		{"SET search_path = '" + db + "._pgcdc'", "DELETE FROM guard"},
		{"SET schema = '_pgcdc'", "DELETE FROM guard"},
		{"SET schema = lower('_PG' || 'CDC')", "DELETE FROM guard"},
		{"USE _pgcdc", "DELETE FROM guard"},
		{"BEGIN", "SET search_path = '_pgcdc'", "ROLLBACK", "DELETE FROM guard"},
	}
	for _, attack := range attacks {
		s := openSession(t, d)
		for i, q := range attack {
			if q == "BEGIN" || q == "ROLLBACK" {
				mustRun(t, s, q)
				continue
			}
			_, _, err := run(s, q)
			switch {
			case err == nil:
				t.Errorf("%s: ran", strings.Join(attack[:i+1], "; "))
			case i == 0 && sqlstate(err) != "42501" && sqlstate(err) != "0A000":
				t.Errorf("%s: %v (SQLSTATE %q), want 42501 or 0A000", q, err, sqlstate(err))
			}
		}
		s.Close()
		if after := stateSnapshot(t, d); after != before {
			t.Fatalf("%s changed _pgcdc:\nbefore %s\nafter  %s", strings.Join(attack, "; "), before, after)
		}
	}

	// Reads work, by any spelling.
	s := openSession(t, d)
	for _, q := range []string{
		"SELECT * FROM _pgcdc.guard",
		"select lsn from \"_PGCDC\".guard where slot = 's1'",
		"SELECT * FROM " + db + "._pgcdc.guard",
		"WITH g AS (SELECT * FROM _pgcdc.guard) SELECT count(*) FROM g",
		"SELECT * FROM public.missing_or_not UNION ALL SELECT 1 WHERE false",
		"EXPLAIN SELECT * FROM _pgcdc.guard",
		"EXPLAIN ANALYZE SELECT * FROM _pgcdc.guard",
		"DESCRIBE _pgcdc.guard",
		"SUMMARIZE _pgcdc.guard",
		"PRAGMA table_info('_pgcdc.guard')",
		"SELECT * FROM query_table('_pgcdc.guard')",
		"SELECT table_name FROM duckdb_tables() WHERE schema_name = '_pgcdc'",
	} {
		if _, _, err := run(s, q); err != nil && !strings.Contains(q, "missing_or_not") {
			t.Errorf("%s: %v", q, err)
		}
	}
	if got := mustRun(t, s, "SELECT slot, CAST(lsn AS BIGINT) FROM _pgcdc.guard"); strings.Join(got, ";") != "s1|100" {
		t.Errorf("read: %v", got)
	}
}

// TestStateSchemaHasNoSequences guards an assumption of the read-only rule:
// nextval() is a SELECT that writes, and DuckDB folds a computed sequence
// name (nextval(concat('_pg', 'cdc.seq'))) into a constant the text never
// shows. A sequence in _pgcdc would be writable by clients.
func TestStateSchemaHasNoSequences(t *testing.T) {
	d := openFile(t)
	if got := engineValue(t, d, "SELECT count(*) FROM duckdb_sequences() WHERE schema_name = '_pgcdc'"); got != "0" {
		t.Fatalf("_pgcdc has %s sequences; clients could advance them with nextval()", got)
	}
}

// TestClientsCannotReachHostFiles: no path a client names reaches the
// host's files, and COPY to or from the standard streams is refused
// whatever the options.
func TestClientsCannotReachHostFiles(t *testing.T) {
	d := openFile(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(secret, []byte("user,password\nroot,hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openSession(t, d)
	mustRun(t, s, "CREATE TABLE public.t AS SELECT 1 AS a")
	for _, q := range []string{
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"SELECT * FROM read_text('" + secret + "')",
		"SELECT * FROM read_blob('" + secret + "')",
		"SELECT * FROM glob('" + dir + "/*')",
		"SELECT * FROM read_text('/etc/passwd')",
		"COPY public.t FROM '" + secret + "'",
		"COPY public.t TO '" + filepath.Join(dir, "out.csv") + "'",
		"COPY (SELECT 'x') TO '" + filepath.Join(dir, "out.parquet") + "' (FORMAT parquet)",
		"EXPORT DATABASE '" + filepath.Join(dir, "export") + "'",
		"IMPORT DATABASE '" + dir + "'",
		"ATTACH '" + filepath.Join(dir, "other.duckdb") + "' AS other",
		"INSTALL httpfs",
		"CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
		"COPY (SELECT 1) TO '/dev/stdout'",
	} {
		refused(t, s, q, "42501")
	}
	for _, name := range []string{"out.csv", "out.parquet", "export", "other.duckdb"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was written", name)
		}
	}
	// COPY's STDOUT and STDIN are the client's connection: the statement
	// becomes rows for the COPY sub-protocol and never reaches DuckDB,
	// which would use pgcdc's own standard streams.
	for _, q := range []string{
		"COPY public.t TO STDOUT",
		"copy (SELECT 1) to stdout with (format csv)",
	} {
		if _, ok := prepareAndQuery(t, s, q).(pgsql.CopyOutRows); !ok {
			t.Errorf("%s: not a COPY to the client", q)
		}
	}
	in, ok := prepareAndQuery(t, s, "COPY public.t FROM STDIN").(pgsql.CopyInRows)
	if !ok {
		t.Fatal("COPY public.t FROM STDIN: not a COPY from the client")
	}
	in.End(context.Background(), errors.New("test"))
	in.Close()
	refused(t, s, "EXPLAIN ANALYZE COPY public.t TO STDOUT", "0A000")
	if got := engineValue(t, d, "SELECT current_setting('enable_external_access') || ',' || current_setting('lock_configuration')"); got != "false,true" {
		t.Errorf("enable_external_access,lock_configuration = %s", got)
	}
}

// TestClientsCannotOverwriteTheReplica: with external access off, DuckDB
// still lets every connection reach the database's own file, WAL and
// temporary directory, so COPY and EXPORT are refused outright.
func TestClientsCannotOverwriteTheReplica(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replica.duckdb")
	d, err := duckdb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.OpenSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, "CREATE TABLE public.t AS SELECT 'kept' AS v")
	for _, q := range []string{
		"COPY (SELECT 'evil' AS x) TO '" + path + "' (FORMAT csv, USE_TMP_FILE false)",
		"COPY (SELECT 'evil' AS x) TO '" + path + ".wal' (FORMAT csv, USE_TMP_FILE false)",
		"COPY public.t TO '" + path + ".wal.recovery' (FORMAT csv)",
		"COPY public.t FROM '" + path + ".wal'",
		"EXPORT DATABASE '" + path + ".tmp'",
		"EXPLAIN ANALYZE COPY (SELECT 'evil' AS x) TO '" + path + "' (FORMAT csv, USE_TMP_FILE false)",
	} {
		refused(t, s, q, "42501")
	}
	s.Close()
	d.Close()
	d, err = duckdb.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d.Close()
	if got := engineValue(t, d, "SELECT v FROM public.t"); got != "kept" {
		t.Fatalf("after reopening: %s", got)
	}
}

// TestUnsafeClientFileAccess: the operator's opt-in gives clients files,
// attachments and settings, and still not pgcdc's standard streams, its
// state or its built-ins.
func TestUnsafeClientFileAccess(t *testing.T) {
	d := openFile(t, duckdb.UnsafeClientFileAccess(true))
	if _, err := d.DB().Exec(`CREATE TABLE _pgcdc.guard (lsn UBIGINT)`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := openSession(t, d)
	out := filepath.Join(dir, "out.csv")
	for _, q := range []string{
		"COPY (SELECT 42 AS answer) TO '" + out + "'",
		"SELECT * FROM read_csv('" + out + "')",
		"ATTACH '" + filepath.Join(dir, "other.duckdb") + "' AS other",
		"DETACH other",
		"SET memory_limit = '1GB'",
	} {
		if _, _, err := run(s, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	refused(t, s, "COPY (SELECT 1) FROM STDIN", "0A000", "42601")
	if _, ok := prepareAndQuery(t, s, "COPY (SELECT 1) TO STDOUT").(pgsql.CopyOutRows); !ok {
		t.Error("COPY (SELECT 1) TO STDOUT: not a COPY to the client")
	}
	for _, q := range []string{
		"COPY (SELECT 1) TO '/dev/stdout'",
		"COPY (SELECT 1) TO '/dev/fd/1'",
		"COPY (SELECT 1) TO '/proc/self/fd/2'",
		"COPY (SELECT 1) TO '/dev/./stderr'",
		"SELECT * FROM read_csv('/dev/stdin')",
		"SELECT * FROM enable_profiling()",
		"DELETE FROM _pgcdc.guard",
		"DROP SCHEMA _pgcdc CASCADE",
		"SET search_path = '_pgcdc'",
		"CREATE MACRO lower(x) AS x",
	} {
		refused(t, s, q, "42501")
	}
}

// TestOpenTwice: a second Open of a file in the same process shares the
// first's DuckDB instance, already closed to clients.
func TestOpenTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replica.duckdb")
	first, err := duckdb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := duckdb.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	second.Close()
	mustRun(t, openSession(t, first), "SELECT 1")
	refused(t, openSession(t, first), "SELECT * FROM read_text('/etc/hostname')", "42501")
	if _, err := duckdb.Open(context.Background(), path, duckdb.UnsafeClientFileAccess(true)); err == nil {
		t.Fatal("an Open that opens client file access succeeded on a database already closed to clients")
	}
}

// prepareAndQuery prepares and runs q and returns its rows unread.
func prepareAndQuery(t *testing.T, s pgsql.Session, q string) pgsql.Rows {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := s.Prepare(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	rows, err := p.Query(ctx, nil)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	t.Cleanup(func() { rows.Close() })
	return rows
}
