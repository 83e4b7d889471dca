package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// These tests hold the COPY sub-protocol and the call shapes of our
// functions to what Postgres does: the same COPY against the source
// Postgres and against pgcdc must give the same bytes.

const copySchema = `
CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric(10,2), note text, ok boolean, ts timestamptz, day date, qty bigint);
INSERT INTO shop.items VALUES
	(1, 'plain', 10.50, 'simple', true, '2026-01-02 03:04:05.123456+00', '2026-01-02', 7),
	(2, 'tab	and ''quote''', 0.01, E'new\nline\\back', false, '1999-12-31 23:59:59+00', '1999-12-31', -1),
	(3, 'comma, "dq"', NULL, NULL, NULL, NULL, NULL, NULL),
	(4, '', 99999999.99, '\.', true, '2026-06-30 12:00:00+00', '2000-02-29', 9000000000),
	(5, 'NULL', -3.00, E'cr\rhere', false, '2026-01-01 00:00:00+00', '2026-01-01', 0);
`

// copyTo runs COPY ... TO STDOUT and returns the data.
func copyTo(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return buf.String(), tag.String()
}

func startCopyReplica(ctx context.Context, t *testing.T) (*pgx.Conn, *pgx.Conn, *pgcdctest.Server) {
	t.Helper()
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, copySchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, t)
	rowsOf(ctx, t, rep, `SELECT table_name FROM init_replication('copy_slot', 'copy_pub', schema_name => 'shop', persist_snapshots => true)`)
	return src, rep, srv
}

func TestCopyToStdoutMatchesPostgres(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep, srv := startCopyReplica(ctx, t)
	const cols = "id, name, price, note, ok, ts, day, qty"
	for _, q := range []string{
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT",
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT csv)",
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'NULL', QUOTE '''', FORCE_QUOTE (name, day))",
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *, ESCAPE '\\')",
		"COPY (SELECT " + cols + " FROM shop.items ORDER BY id) TO STDOUT WITH (DELIMITER '|', NULL '<null>', HEADER true)",
		"COPY (SELECT note FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT csv)",
		"COPY (SELECT id, name, ok, qty FROM shop.items ORDER BY id) TO STDOUT WITH (FORMAT binary)",
		"copy (select id, day from shop.items order by id) to stdout with csv header",
	} {
		want, wantTag := copyTo(ctx, t, src, q)
		got, gotTag := copyTo(ctx, t, rep, q)
		if got != want || gotTag != wantTag {
			t.Errorf("%s:\npgcdc    %q (%s)\npostgres %q (%s)", q, got, gotTag, want, wantTag)
		}
	}
	// A table with a column list (the replica's tables also have
	// _pg_lsn and _pg_deleted_ts, which COPY without a list includes as
	// SELECT * does), compared without order.
	for _, q := range []string{"COPY shop.items (" + cols + ") TO STDOUT", "COPY shop.items (name, id) TO STDOUT (FORMAT csv)"} {
		want, wantTag := copyTo(ctx, t, src, q)
		got, gotTag := copyTo(ctx, t, rep, q)
		if sortedLines(got) != sortedLines(want) || gotTag != wantTag {
			t.Errorf("%s:\npgcdc    %q (%s)\npostgres %q (%s)", q, got, gotTag, want, wantTag)
		}
	}
	// Errors are Postgres's, and the session goes on.
	wantCode(ctx, t, rep, "42P01", "COPY shop.nope TO STDOUT")
	wantCode(ctx, t, rep, "0A000", "COPY shop.items TO STDOUT (FORMAT text, QUOTE '\"')")
	wantCode(ctx, t, rep, "42601", "COPY shop.items TO STDOUT (FORMAT binary, DELIMITER ',')")
	wantCode(ctx, t, rep, "42601", "COPY shop.items TO STDOUT (bogus 1)")
	// Files stay refused, and nothing reaches pgcdc's own output.
	wantCode(ctx, t, rep, "42501", "COPY shop.items TO '"+filepath.Join(t.TempDir(), "x.csv")+"'")
	if strings.Contains(srv.Logs(), "comma, ") {
		t.Fatalf("COPY data reached pgcdc's standard output:\n%s", srv.Logs())
	}
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && lines[j] < lines[j-1]; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return strings.Join(lines, "\n")
}

func TestCopyFromStdin(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep, _ := startCopyReplica(ctx, t)
	mustExec(ctx, t, src, "CREATE TABLE public.mine (id int, name text, price numeric(10,2), ok boolean, ts timestamptz, day date)")
	mustExec(ctx, t, rep, "CREATE TABLE public.mine (id INTEGER, name VARCHAR, price DECIMAL(10,2), ok BOOLEAN, ts TIMESTAMPTZ, day DATE)")

	// pgx CopyFrom (binary format), against both.
	rows := [][]any{
		{int32(1), "one", "1.50", true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{int32(2), "tab\tnew\nline", nil, false, nil, nil},
	}
	for _, conn := range []*pgx.Conn{src, rep} {
		n, err := conn.CopyFrom(ctx, pgx.Identifier{"mine"}, []string{"id", "name", "price", "ok", "ts", "day"}, pgx.CopyFromRows(rows))
		if err != nil || n != 2 {
			t.Fatalf("CopyFrom: %d, %v", n, err)
		}
	}
	// Text and csv through the COPY protocol, with the data split across
	// messages at awkward places.
	for _, c := range []struct{ sql, data string }{
		{"COPY public.mine (id, name) FROM STDIN", "3\tthree\\\\x\n4\t\\N\n\\.\n"},
		{"COPY public.mine (id, name, ok) FROM STDIN (FORMAT csv, HEADER)", "id,name,ok\n5,\"multi\nline, \"\"q\"\"\",t\n6,,f\n7,\"\",\n"},
	} {
		for _, conn := range []*pgx.Conn{src, rep} {
			tag, err := conn.PgConn().CopyFrom(ctx, &chunkReader{data: []byte(c.data), size: 3}, c.sql)
			if err != nil {
				t.Fatalf("%s: %v", c.sql, err)
			}
			if tag.RowsAffected() == 0 {
				t.Fatalf("%s: tag %s", c.sql, tag)
			}
		}
	}
	const check = "COPY (SELECT id, name, price, ok, ts, day FROM public.mine ORDER BY id) TO STDOUT (FORMAT csv)"
	want, _ := copyTo(ctx, t, src, check)
	got, _ := copyTo(ctx, t, rep, check)
	if got != want {
		t.Fatalf("after COPY FROM:\npgcdc    %q\npostgres %q", got, want)
	}

	// A failed COPY leaves nothing behind: bad data, CopyFail, too many
	// columns. The session goes on.
	for _, c := range []struct{ sql, data, code string }{
		{"COPY public.mine (id, name) FROM STDIN", "8\teight\nx\tbad\n", "22P02"},
		{"COPY public.mine (id, name) FROM STDIN", "8\teight\tmore\n", "22P04"},
		{"COPY public.mine (id, name) FROM STDIN", "8\n", "22P04"},
	} {
		_, err := rep.PgConn().CopyFrom(ctx, strings.NewReader(c.data), c.sql)
		if pgCode(err) != c.code {
			t.Errorf("%s with %q: %v, want %s", c.sql, c.data, err, c.code)
		}
	}
	_, err := rep.PgConn().CopyFrom(ctx, &failingReader{}, "COPY public.mine (id) FROM STDIN")
	if err == nil {
		t.Error("a COPY whose reader failed succeeded")
	}
	if got, _ := copyTo(ctx, t, rep, check); got != want {
		t.Fatalf("a failed COPY changed the table:\n%q\nwant %q", got, want)
	}
	// Inside a block, a failed COPY fails the block as in Postgres.
	mustExec(ctx, t, rep, "BEGIN")
	if _, err := rep.PgConn().CopyFrom(ctx, strings.NewReader("9\tnine\n"), "COPY public.mine (id, name) FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, rep, "ROLLBACK")
	if got, _ := copyTo(ctx, t, rep, check); got != want {
		t.Fatalf("a rolled-back COPY changed the table:\n%q\nwant %q", got, want)
	}

	// Rows go to DuckDB in batches: full ones and a remainder, all or
	// nothing.
	mustExec(ctx, t, rep, "CREATE TABLE public.many (id BIGINT, name VARCHAR)")
	n, err := rep.CopyFrom(ctx, pgx.Identifier{"many"}, []string{"id", "name"}, pgx.CopyFromSlice(5000, func(i int) ([]any, error) {
		return []any{int64(i), "row"}, nil
	}))
	if err != nil || n != 5000 {
		t.Fatalf("CopyFrom 5000 rows: %d %v", n, err)
	}
	if got := rowsOf(ctx, t, rep, "SELECT count(*), sum(id) FROM public.many"); got[0] != "5000|12497500" {
		t.Fatalf("after 5000 rows: %v", got)
	}
	var data strings.Builder
	for i := range 4500 {
		fmt.Fprintf(&data, "%d\tr\n", i)
	}
	data.WriteString("4500\tr\tbad\n")
	if _, err := rep.PgConn().CopyFrom(ctx, strings.NewReader(data.String()), "COPY public.many FROM STDIN"); pgCode(err) != "22P04" {
		t.Fatalf("a bad row after two batches: %v", err)
	}
	if got := rowsOf(ctx, t, rep, "SELECT count(*) FROM public.many"); got[0] != "5000" {
		t.Fatalf("a failed COPY left rows: %v", got)
	}

	// The replica's own tables and the state are not the client's to fill.
	for _, q := range []string{"COPY shop.items (id) FROM STDIN", "COPY _pgcdc.meta FROM STDIN"} {
		_, err := rep.PgConn().CopyFrom(ctx, strings.NewReader("100\n"), q)
		if pgCode(err) != "42501" {
			t.Errorf("%s: %v, want 42501", q, err)
		}
	}
	mustExec(ctx, t, rep, "SET search_path = shop")
	if _, err := rep.PgConn().CopyFrom(ctx, strings.NewReader("100\n"), "COPY items (id) FROM STDIN"); pgCode(err) != "42501" {
		t.Errorf("unqualified replica table: %v, want 42501", err)
	}
	if n := rowsOf(ctx, t, rep, "SELECT count(*) FROM shop.items WHERE id = 100"); n[0] != "0" {
		t.Fatal("a client copied into a replicated table")
	}
}

// chunkReader hands out data a few bytes at a time, so COPY data arrives
// in many CopyData messages split mid-row.
type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, ioEOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

var (
	ioEOF           = io.EOF
	errReaderFailed = errors.New("the reader failed")
)

type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "10\n"), nil
	}
	return 0, errReaderFailed
}

// TestPsqlCopyAndPsycopg2 runs psql's \copy both ways and psycopg2's
// copy_expert against pgcdc and Postgres and compares the files.
func TestPsqlCopyAndPsycopg2(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	psqlPath, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed (.ci/run installs postgresql-client): ", err)
	}
	src, rep, srv := startCopyReplica(ctx, t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("1,\"a,b\"\n2,\n3,\"line\nbreak\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, src, "CREATE TABLE public.notes (id int, body text)")
	mustExec(ctx, t, rep, "CREATE TABLE public.notes (id INTEGER, body VARCHAR)")
	run := func(dsn, outName string) string {
		out := filepath.Join(dir, outName)
		script := `\copy public.notes FROM '` + in + `' WITH (FORMAT csv)
\copy (SELECT n.id, n.body, i.price FROM public.notes n JOIN shop.items i ON i.id = n.id ORDER BY n.id) TO '` + out + `' WITH (FORMAT csv, HEADER)
`
		cmd := exec.CommandContext(ctx, psqlPath, "-X", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "COPY 3") {
			t.Fatalf("psql against %s: %v\n%s", outName, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	want := run(src.Config().ConnString(), "pg.csv")
	got := run(srv.DSN(), "pgcdc.csv")
	if got != want {
		t.Fatalf(`\copy: pgcdc %q, postgres %q`, got, want)
	}

	python := findPsycopg2(t)
	script := `
import io, sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.copy_expert("COPY public.notes (id, body) FROM STDIN WITH (FORMAT csv)", io.StringIO("10,ten\n11,\"el,even\"\n"))
conn.commit()
out = io.StringIO()
cur.copy_expert("COPY (SELECT id, body FROM public.notes ORDER BY id) TO STDOUT WITH (FORMAT text)", out)
sys.stdout.write(out.getvalue())
`
	py := func(dsn string) string {
		cmd := exec.CommandContext(ctx, python, "-c", script, dsn)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psycopg2: %v\n%s", err, b)
		}
		return string(b)
	}
	if got, want := py(srv.DSN()), py(src.Config().ConnString()); got != want {
		t.Fatalf("copy_expert: pgcdc %q, postgres %q", got, want)
	}
}

// TestCallShapes: our functions in any FROM clause, run once, the rest of
// the statement on the replica; in the simple and the extended protocol,
// with parameters in the calls and elsewhere.
func TestCallShapes(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep, srv := startCopyReplica(ctx, t)
	mustExec(ctx, t, rep, "CREATE TABLE public.runlog (ran_at TIMESTAMPTZ, table_name VARCHAR, inserts BIGINT)")

	mustExec(ctx, t, src, "INSERT INTO shop.items (id, name) VALUES (10, 'ten'), (11, 'eleven')")
	// Simple protocol: an aggregate over replicate().
	var tables, inserts int64
	if err := rep.QueryRow(ctx, "SELECT count(*), sum(inserts) FROM replicate('copy_slot', 'copy_pub')", pgx.QueryExecModeSimpleProtocol).Scan(&tables, &inserts); err != nil {
		t.Fatal(err)
	}
	if inserts != 2 {
		t.Fatalf("count, sum(inserts) = %d, %d; want 2 inserts", tables, inserts)
	}
	if got := rowsOf(ctx, t, rep, "SELECT count(*) FROM shop.items WHERE id >= 10"); got[0] != "2" {
		t.Fatalf("replicate() did not run: %v", got)
	}

	// Extended protocol, parameters in the call and in the rest: a CTE and
	// a join with a replica table.
	mustExec(ctx, t, src, "INSERT INTO shop.items (id, name) VALUES (12, 'twelve')")
	got := rowsOf(ctx, t, rep, `WITH r AS (SELECT * FROM replicate($1, $2)) 
		SELECT i.name, r.inserts FROM r JOIN shop.items i ON i.id >= $3 WHERE r.table_name = $4 ORDER BY i.id`,
		"copy_slot", "copy_pub", 12, "shop.items")
	if strings.Join(got, ";") != "twelve|1" {
		t.Fatalf("CTE with a join: %v", got)
	}
	// WHERE on replication_status(), with the select list's names.
	rows, err := rep.Query(ctx, "SELECT s.slot_name AS slot, active FROM replication_status() s WHERE slot_name = $1", "copy_slot")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Err() != nil || n != 1 || strings.Join(names, ",") != "slot,active" {
		t.Fatalf("replication_status() WHERE: %d rows, columns %v, %v", n, names, rows.Err())
	}
	// A dbt pre-hook logging its run.
	mustExec(ctx, t, src, "INSERT INTO shop.items (id, name) VALUES (13, 'thirteen')")
	tag, err := rep.Exec(ctx, "INSERT INTO runlog SELECT now(), table_name, inserts FROM replicate('copy_slot', 'copy_pub') WHERE inserts > 0")
	if err != nil || tag.String() != "INSERT 0 1" {
		t.Fatalf("INSERT ... SELECT FROM replicate(): %v %v", tag, err)
	}
	if got := rowsOf(ctx, t, rep, "SELECT table_name, inserts FROM runlog"); strings.Join(got, ";") != "shop.items|1" {
		t.Fatalf("runlog: %v", got)
	}
	// psql, simple protocol.
	out, err := psql(ctx, t, srv, "SELECT count(*) FROM replication_status() WHERE slot_name = 'copy_slot'")
	if err != nil || out != "1" {
		t.Fatalf("psql: %q %v", out, err)
	}

	// Where how often a call runs would be up to the plan: 0A000, and the
	// call does not run.
	mustExec(ctx, t, src, "INSERT INTO shop.items (id, name) VALUES (14, 'fourteen')")
	for _, q := range []string{
		"SELECT * FROM shop.items WHERE id IN (SELECT inserts FROM replicate('copy_slot', 'copy_pub'))",
		"SELECT replicate('copy_slot', 'copy_pub') FROM shop.items",
		"SELECT * FROM shop.items i, LATERAL (SELECT * FROM replicate('copy_slot', 'copy_pub')) r",
		"SELECT * FROM shop.items i JOIN shop.items j ON j.id = (SELECT count(*) FROM replicate('copy_slot', 'copy_pub'))",
		"SELECT (SELECT count(*) FROM replicate('copy_slot', 'copy_pub'))",
		"INSERT INTO runlog SELECT now(), 'x', 1 RETURNING (SELECT count(*) FROM replicate('copy_slot', 'copy_pub'))",
	} {
		wantCode(ctx, t, rep, "0A000", q)
	}
	if got := rowsOf(ctx, t, rep, "SELECT count(*) FROM shop.items WHERE id = 14"); got[0] != "0" {
		t.Fatal("a refused statement ran replicate()")
	}
	// The simple shapes keep their own description.
	rows, err = rep.Query(ctx, "SELECT replicate('copy_slot', 'copy_pub')")
	if err != nil {
		t.Fatal(err)
	}
	if fd := rows.FieldDescriptions(); len(fd) != 1 || fd[0].Name != "replicate" || fd[0].DataTypeOID != 25 {
		t.Fatalf("SELECT replicate(): %+v", fd)
	}
	rows.Close()
}

// TestCallShapesOverPostgres: a forwarded session runs the rest of a
// statement upstream as the client sent it, so only the simple shapes are
// ours there; the others get a clear 0A000 and the session goes on.
func TestCallShapesOverPostgres(t *testing.T) {
	dest, err := destinationCluster()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	p := startProxySetup(ctx, t, dest)
	conn := p.srv.Connect(ctx, t)
	for _, q := range []string{
		"SELECT count(*) FROM replication_status()",
		"SELECT * FROM replication_status() WHERE slot_name = 'x'",
	} {
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "over a Postgres destination") {
			t.Errorf("%s: %v", q, err)
		}
	}
	if got := rowsOf(ctx, t, conn, "SELECT count(*) FROM (SELECT 1) x"); got[0] != "1" {
		t.Fatalf("after the refusals: %v", got)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM replication_status()"); err != nil {
		t.Fatalf("the simple shape over Postgres: %v", err)
	}
}
