package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/internal/testcert"
	pgsql "github.com/pgcdc/pgcdc/sql"
)

// The proxy tests run pgcdc serve --destination postgres://... in front of
// a second throwaway cluster and check that clients see the destination
// itself, with pgcdc's functions added: psql's catalog commands and \copy,
// pgx in every query mode with pipelines and COPY, pgbench, cancels,
// ParameterStatus, and our calls inside transactions and pipelines. Where
// it can, a test runs the same thing straight against the destination and
// compares.

// startDestinationCluster starts a throwaway Postgres to replicate into,
// stopped when t ends.
func startDestinationCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// proxySetup is a source database, an empty destination database and a
// pgcdc serving the destination.
type proxySetup struct {
	srv     *pgcdctest.Server
	src     *pgx.Conn
	destDSN string // the destination database, directly
	dest    *pgtest.Cluster
}

func startProxySetup(ctx context.Context, t *testing.T, dest *pgtest.Cluster, extra ...string) *proxySetup {
	t.Helper()
	srcDSN, src := newSourceDB(ctx, t)
	name := testDatabaseNameFor(t)
	if err := dest.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	destDSN := dest.DSN(name)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: srcDSN, Destination: destDSN, Extra: extra})
	// The listener accepts before start-up (declaring the functions in
	// the destination) is done; a query answered means it is.
	waitServing(ctx, t, srv)
	t.Cleanup(func() {
		if strings.Contains(srv.Logs(), pgtest.Password) {
			t.Error("a destination or source password is in pgcdc's log")
		}
	})
	return &proxySetup{srv: srv, src: src, destDSN: destDSN, dest: dest}
}

// waitServing waits until srv answers a query.
func waitServing(ctx context.Context, t *testing.T, srv *pgcdctest.Server) {
	t.Helper()
	conn := srv.Connect(ctx, t)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("pgcdc does not answer: %v", err)
	}
	conn.Close(ctx)
}

// testDatabaseNameFor is a database name of t's own.
func testDatabaseNameFor(t *testing.T) string {
	name := fmt.Sprintf("%s_%d", strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(t.Name())), dbSeq.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return strings.TrimLeft(name, "_0123456789")
}

// direct connects to the destination itself.
func (p *proxySetup) direct(ctx context.Context, t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, p.destDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// conninfo is a libpq connection string for pgcdc (proxied) or the
// destination.
func (p *proxySetup) conninfo(proxied bool) string {
	if proxied {
		return p.srv.DSN() + " application_name=proxytest"
	}
	cfg, _ := pgconn.ParseConfig(p.destDSN)
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=10 application_name=proxytest",
		cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database)
}

// psql runs a psql script, -X -A, against pgcdc or the destination.
func (p *proxySetup) psql(ctx context.Context, t *testing.T, proxied bool, script string, args ...string) (string, string, error) {
	t.Helper()
	path, err := exec.LookPath("psql")
	if err != nil {
		requireClient(t, "psql is not installed (postgresql-client): %v", err)
	}
	cmd := exec.CommandContext(ctx, path, append([]string{"-X", "-A", "-d", p.conninfo(proxied), "-f", "-"}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestProxy(t *testing.T) {
	dest := startDestinationCluster(t)
	t.Run("psql", func(t *testing.T) { proxyPsql(t, dest) })
	t.Run("startup_and_settings", func(t *testing.T) { proxyStartup(t, dest) })
	t.Run("pgx", func(t *testing.T) { proxyPgx(t, dest) })
	t.Run("calls_in_transactions", func(t *testing.T) { proxyTransactions(t, dest) })
	t.Run("cancel", func(t *testing.T) { proxyCancel(t, dest) })
	t.Run("discovery", func(t *testing.T) { proxyDiscovery(t, dest) })
	t.Run("pgbench", func(t *testing.T) { proxyPgbench(t, dest) })
	t.Run("tls_and_password", func(t *testing.T) { proxyTLS(t, dest) })
	t.Run("destination_is_a_secret", func(t *testing.T) { proxyDestinationSecret(t, dest) })
}

// proxyDestinationSecret: the destination URL holds a password: --help
// does not echo it from the environment, pgcdc warns when it is on the
// command line, and never logs it.
func proxyDestinationSecret(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	help := exec.Command(bin, "serve", "--help")
	help.Env = append(os.Environ(), "PGCDC_DESTINATION="+dest.DSN("postgres"))
	out, _ := help.CombinedOutput()
	if strings.Contains(string(out), pgtest.Password) {
		t.Errorf("--help shows the destination's password:\n%s", out)
	}
	srcDSN, _ := newSourceDB(ctx, t)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: srcDSN, Extra: []string{"--destination", dest.DSN("postgres")}})
	waitServing(ctx, t, srv)
	logs := srv.Logs()
	if !strings.Contains(logs, "--destination was given on the command line") {
		t.Errorf("no warning about --destination on the command line:\n%s", logs)
	}
	if strings.Contains(logs, pgtest.Password) {
		t.Errorf("the destination's password is in the logs:\n%s", logs)
	}
}

// proxyTLS: clients authenticate to pgcdc (SCRAM over TLS) as over DuckDB;
// a wrong password never reaches the destination.
func proxyTLS(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	cert, key := testcert.Files(t)
	srcDSN, _ := newSourceDB(ctx, t)
	name := testDatabaseNameFor(t)
	if err := dest.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: srcDSN, Destination: dest.DSN(name), Password: clientPassword,
		Extra: []string{"--tls-cert", cert, "--tls-key", key, "--tls-required"}})
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=someone dbname=whatever password=%s sslmode=require connect_timeout=10", srv.Port, clientPassword)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
	}
	if got := rowsOf(ctx, t, conn, "SELECT current_database()"); got[0] != name {
		t.Fatalf("current_database() = %v, want the destination's %s", got, name)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM replication_status()"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, strings.Replace(dsn, clientPassword, "wrong", 1)); pgCode(err) != "28P01" {
		t.Fatalf("wrong password: %v, want 28P01", err)
	}
	if _, err := pgx.Connect(ctx, strings.Replace(dsn, "sslmode=require", "sslmode=disable", 1)); pgCode(err) != "28000" {
		t.Fatalf("without TLS: %v, want 28000", err)
	}
}

// proxyPsql: psql's catalog commands answer the same through pgcdc as
// straight from the destination; \df pgcdc.* lists our functions with
// their documentation; \copy works both ways; our call runs inside a
// transaction block, and a failing one aborts it.
func proxyPsql(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, 2*time.Minute)
	p := startProxySetup(ctx, t, dest)
	mustExec(ctx, t, p.direct(ctx, t), `CREATE SCHEMA shop;
		CREATE TABLE shop.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2));
		COMMENT ON TABLE shop.items IS 'replicated items';
		CREATE VIEW shop.cheap AS SELECT * FROM shop.items WHERE price < 10;
		INSERT INTO shop.items VALUES (1, 'pen', 1.50), (2, 'book', 12.00)`)

	// The same commands, straight and through pgcdc.
	catalog := `\d shop.items
\dt shop.*
\dv shop.*
\dn
\df pgcdc.*
\df+ pgcdc.replication_status
\d+ shop.items
SELECT count(*) FROM shop.items;
SHOW server_version;
SELECT version();
`
	want, wantErr, err := p.psql(ctx, t, false, catalog)
	if err != nil {
		t.Fatalf("psql on the destination: %v\n%s", err, wantErr)
	}
	got, gotErr, err := p.psql(ctx, t, true, catalog)
	if err != nil {
		t.Fatalf("psql through pgcdc: %v\n%s", err, gotErr)
	}
	if got != want || gotErr != wantErr {
		t.Errorf("psql through pgcdc differs from psql on the destination\n%s", sideBySide(strings.Split(want+wantErr, "\n"), strings.Split(got+gotErr, "\n")))
	}
	for _, fn := range []string{"init_replication", "replicate", "replication_status", "drop_replication"} {
		if !strings.Contains(got, "pgcdc|"+fn+"|TABLE(") {
			t.Errorf(`\df pgcdc.* does not list %s:\n%s`, fn, got)
		}
	}
	if !strings.Contains(got, "Reports the source's pgoutput replication slots") {
		t.Errorf(`\df+ shows no documentation:\n%s`, got)
	}

	// \copy in both directions.
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("3,ink,2.25\n4,\"lamp, big\",40.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.csv")
	stdout, stderr, err := p.psql(ctx, t, true, fmt.Sprintf(`\set ON_ERROR_STOP 1
\copy shop.items FROM '%s' WITH (FORMAT csv)
\copy (SELECT * FROM shop.items ORDER BY id) TO '%s' WITH (FORMAT csv)
`, in, out))
	if err != nil || !strings.Contains(stdout, "COPY 2") || !strings.Contains(stdout, "COPY 4") {
		t.Fatalf(`\copy: %v\n%s\n%s`, err, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if want := "1,pen,1.50\n2,book,12.00\n3,ink,2.25\n4,\"lamp, big\",40.00\n"; err != nil || string(b) != want {
		t.Fatalf(`\copy TO wrote %q (%v), want %q`, b, err, want)
	}

	// Our call inside a transaction block, and a failing one.
	stdout, stderr, err = p.psql(ctx, t, true, `\set VERBOSITY verbose
BEGIN;
SELECT * FROM replication_status();
INSERT INTO shop.items VALUES (5, 'in a block', 1);
COMMIT;
BEGIN;
INSERT INTO shop.items VALUES (6, 'rolled back', 1);
SELECT * FROM replicate('no_slot', 'no_pub', bogus => 1);
SELECT 'refused';
ROLLBACK;
SELECT string_agg(name, ',' ORDER BY id) FROM shop.items WHERE id >= 5;
`)
	if err != nil {
		t.Fatalf("transactions: %v\n%s\n%s", err, stdout, stderr)
	}
	t.Logf("psql through pgcdc:\n%s%s", stdout, stderr)
	for _, want := range []string{"BEGIN\nslot_name|publication|active|confirmed_lsn|current_lsn|lag_bytes|wal_status|last_replicated_at|tables|table_name|state|lag_seconds|last_commit_at|last_error|inserts|updates|deletes|truncates\n(0 rows)\n",
		"INSERT 0 1\nCOMMIT\n", "string_agg\nin a block\n(1 row)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("psql output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "ERROR:  42883:") || !strings.Contains(stderr, "ERROR:  25P02:") {
		t.Errorf("a failed call in a block should give 42883 and then 25P02 from the destination:\n%s", stderr)
	}
}

// sideBySide lays two outputs out line by line, marking differences.
func sideBySide(want, got []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "   %-70s | %s\n", "destination", "through pgcdc")
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		mark := "  "
		if w != g {
			mark = "!!"
		}
		fmt.Fprintf(&b, "%s %-70s | %s\n", mark, w, g)
	}
	return b.String()
}

// proxyStartup: what the client learns at startup and from SHOW is the
// destination's, and the backend PID it was given is the destination
// backend's.
func proxyStartup(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	p := startProxySetup(ctx, t, dest)
	connect := func(proxied bool) *pgconn.PgConn {
		c, err := pgconn.Connect(ctx, p.conninfo(proxied)+" options='-c search_path=shop,public'")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	direct, proxied := connect(false), connect(true)
	for _, name := range []string{"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone", "IntervalStyle",
		"integer_datetimes", "standard_conforming_strings", "is_superuser", "session_authorization", "application_name",
		"default_transaction_read_only", "in_hot_standby"} {
		if d, g := direct.ParameterStatus(name), proxied.ParameterStatus(name); d != g {
			t.Errorf("ParameterStatus %s: destination %q, through pgcdc %q", name, d, g)
		}
	}
	query := func(c *pgconn.PgConn, sql string) string {
		res, err := c.Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var out []string
		for _, r := range res {
			for _, row := range r.Rows {
				for _, v := range row {
					out = append(out, string(v))
				}
			}
		}
		return strings.Join(out, "|")
	}
	for _, q := range []string{"SHOW server_version", "SHOW server_version_num", "SELECT version()", "SHOW search_path",
		"SELECT current_setting('application_name')", "SHOW DateStyle"} {
		if d, g := query(direct, q), query(proxied, q); d != g {
			t.Errorf("%s: destination %q, through pgcdc %q", q, d, g)
		}
	}
	if pid := query(proxied, "SELECT pg_backend_pid()"); pid != fmt.Sprint(proxied.PID()) {
		t.Errorf("pg_backend_pid() = %s, but the client was given PID %d", pid, proxied.PID())
	}
	// A SET the destination reports comes back as ParameterStatus.
	query(proxied, "SET application_name = 'renamed'; SET TimeZone = 'Asia/Tokyo'")
	if v := proxied.ParameterStatus("application_name"); v != "renamed" {
		t.Errorf("ParameterStatus application_name after SET = %q", v)
	}
	if v := proxied.ParameterStatus("TimeZone"); v != "Asia/Tokyo" {
		t.Errorf("ParameterStatus TimeZone after SET = %q", v)
	}
	if got := query(proxied, "SELECT '2026-01-01 00:00:00+00'::timestamptz"); got != "2026-01-01 09:00:00+09" {
		t.Errorf("timestamptz in the session's time zone = %q", got)
	}
}

// proxyPgx: pgx in every query mode, pipelines mixing our calls with
// passthrough statements, and COPY FROM and TO.
func proxyPgx(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, 2*time.Minute)
	p := startProxySetup(ctx, t, dest)
	mustExec(ctx, t, p.direct(ctx, t), `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], at timestamptz)`)
	conn := p.srv.Connect(ctx, t)

	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for i, mode := range modes {
		if _, err := conn.Exec(ctx, "INSERT INTO items VALUES ($1, $2, $3, $4, $5)", mode, i, mode.String(), "1.25", []string{"a", "b c"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
			t.Fatalf("%v: insert: %v", mode, err)
		}
		var name string
		var tags []string
		var at time.Time
		if err := conn.QueryRow(ctx, "SELECT name, tags, at FROM items WHERE id = $1", mode, i).Scan(&name, &tags, &at); err != nil {
			t.Fatalf("%v: select: %v", mode, err)
		}
		if name != mode.String() || !slices.Equal(tags, []string{"a", "b c"}) || !at.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Fatalf("%v: read back %q %q %v", mode, name, tags, at)
		}
		// Our call, with a parameter, in the same mode.
		rows, err := conn.Query(ctx, "SELECT slot_name, active FROM replication_status($1)", mode, nil)
		if err != nil {
			t.Fatalf("%v: replication_status: %v", mode, err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n != 0 {
			t.Fatalf("%v: replication_status: %d rows, %v", mode, n, err)
		}
		if fds := rows.FieldDescriptions(); len(fds) != 2 || fds[0].Name != "slot_name" || fds[1].Name != "active" {
			t.Fatalf("%v: replication_status columns %+v", mode, fds)
		}
	}

	// A batch (one pipeline) mixing our call with passthrough statements:
	// every answer in order.
	b := &pgx.Batch{}
	b.Queue("INSERT INTO items (id, name) VALUES (100, 'batch')")
	b.Queue("SELECT slot_name FROM replication_status()")
	b.Queue("SELECT name FROM items WHERE id = 100")
	b.Queue("SELECT * FROM replication_status(NULL)")
	b.Queue("SELECT 'last'")
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatalf("batch insert: %v", err)
	}
	if tag, err := br.Exec(); err != nil || tag.String() != "SELECT 0" {
		t.Fatalf("batch replication_status: %v, %v", tag, err)
	}
	var name string
	if err := br.QueryRow().Scan(&name); err != nil || name != "batch" {
		t.Fatalf("batch select: %q, %v", name, err)
	}
	if _, err := br.Exec(); err != nil {
		t.Fatalf("batch replication_status(NULL): %v", err)
	}
	if err := br.QueryRow().Scan(&name); err != nil || name != "last" {
		t.Fatalf("batch last: %q, %v", name, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}

	// A pipeline in which our call fails: the statements after it up to
	// Sync are skipped, and the insert before it is rolled back, as in a
	// pipeline on Postgres itself, where the same call fails too (with
	// 42883: no such function).
	failing := func(c *pgconn.PgConn) string {
		pl := c.StartPipeline(ctx)
		pl.SendQueryParams("INSERT INTO items (id, name) VALUES (200, 'rolled back')", nil, nil, nil, nil)
		pl.SendQueryParams("SELECT * FROM replicate('no_slot', 'no_pub', bogus => 1)", nil, nil, nil, nil)
		pl.SendQueryParams("INSERT INTO items (id, name) VALUES (201, 'skipped')", nil, nil, nil, nil)
		if err := pl.Sync(); err != nil {
			t.Fatal(err)
		}
		var results []string
		for {
			res, err := pl.GetResults()
			if err != nil {
				results = append(results, pgCode(err))
				continue
			}
			if _, ok := res.(*pgconn.PipelineSync); ok || res == nil {
				results = append(results, "sync")
				break
			}
			if rr, ok := res.(*pgconn.ResultReader); ok {
				tag, err := rr.Close()
				results = append(results, tag.String()+pgCode(err))
			}
		}
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(results, ",")
	}
	want := failing(p.direct(ctx, t).PgConn())
	if got := failing(conn.PgConn()); got != want || want != "INSERT 0 1,42883,sync" {
		t.Fatalf("pipeline results %s through pgcdc, %s on the destination", got, want)
	}
	if n := rowsOf(ctx, t, conn, "SELECT count(*) FROM items WHERE id >= 200"); n[0] != "0" {
		t.Fatalf("rows from the failed pipelines: %v, want none", n)
	}

	// COPY in both directions.
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "name", "price", "tags"},
		pgx.CopyFromSlice(1000, func(i int) ([]any, error) {
			return []any{1000 + i, fmt.Sprintf("copied %d", i), "9.99", []string{"x"}}, nil
		}))
	if err != nil || copied != 1000 {
		t.Fatalf("CopyFrom: %d, %v", copied, err)
	}
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, name FROM items WHERE id >= 1000 ORDER BY id) TO STDOUT")
	if err != nil || tag.RowsAffected() != 1000 || !strings.HasPrefix(buf.String(), "1000\tcopied 0\n1001\tcopied 1\n") {
		t.Fatalf("CopyTo: %v %v %q", tag, err, buf.String()[:min(buf.Len(), 100)])
	}
	// The session is in order afterwards.
	if got := rowsOf(ctx, t, conn, "SELECT count(*) FROM items"); got[0] != "1006" {
		t.Fatalf("rows = %v", got)
	}
}

// proxyTransactions: our call inside BEGIN ... COMMIT leaves the block
// open; a failing call aborts it on the destination too, so the next
// statement gets the destination's 25P02 and ROLLBACK undoes the block.
func proxyTransactions(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	p := startProxySetup(ctx, t, dest)
	mustExec(ctx, t, p.direct(ctx, t), `CREATE TABLE log (msg text)`)
	conn := p.srv.Connect(ctx, t)

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExecTx(ctx, t, tx, "INSERT INTO log VALUES ('before')")
	if _, err := tx.Exec(ctx, "SELECT * FROM replication_status()"); err != nil {
		t.Fatalf("replication_status in a block: %v", err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("status after our call in a block = %c, want T", st)
	}
	mustExecTx(ctx, t, tx, "INSERT INTO log VALUES ('after')")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExecTx(ctx, t, tx, "INSERT INTO log VALUES ('rolled back')")
	if _, err := tx.Exec(ctx, "SELECT * FROM replicate('no_slot', 'no_pub', nope => true)"); pgCode(err) != "42883" {
		t.Fatalf("failing call in a block: %v, want 42883", err)
	}
	if st := conn.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("status after a failed call in a block = %c, want E", st)
	}
	// The destination agrees: it refuses the next statement itself.
	_, err = tx.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25P02" || pe.Routine == "" {
		t.Fatalf("statement after the failed call: %v (routine %q), want the destination's own 25P02", err, pe.Routine)
	}
	if _, err := tx.Exec(ctx, "SELECT * FROM replication_status()"); pgCode(err) != "25P02" {
		t.Fatalf("our call in the failed block: %v, want 25P02", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(ctx, t, conn, "SELECT string_agg(msg, ',' ORDER BY msg) FROM log"); got[0] != "after,before" {
		t.Fatalf("log = %v", got)
	}
	// Our call between statements of one simple-protocol query string,
	// which stays one implicit transaction: the insert before a failing
	// call is rolled back.
	_, err = conn.Exec(ctx, "INSERT INTO log VALUES ('implicit'); SELECT * FROM replicate('s', 'p', bogus => 1); INSERT INTO log VALUES ('never')", pgx.QueryExecModeSimpleProtocol)
	if pgCode(err) != "42883" {
		t.Fatalf("multi-statement query with a failing call: %v", err)
	}
	if got := rowsOf(ctx, t, conn, "SELECT count(*) FROM log"); got[0] != "2" {
		t.Fatalf("log has %v rows, want 2: the failed query string is one transaction", got)
	}
}

func mustExecTx(ctx context.Context, t *testing.T, tx pgx.Tx, sql string) {
	t.Helper()
	if _, err := tx.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// proxyCancel: a CancelRequest reaches the destination backend that runs
// the statement, and the session goes on.
func proxyCancel(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	p := startProxySetup(ctx, t, dest)
	conn := p.srv.Connect(ctx, t)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	// Cancel once the destination runs it.
	direct := p.direct(ctx, t)
	for {
		var n int
		if err := direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if pgCode(err) != "57014" || time.Since(start) > 20*time.Second {
		t.Fatalf("cancelled pg_sleep: %v after %v, want 57014 at once", err, time.Since(start))
	}
	if got := rowsOf(ctx, t, conn, "SELECT 'still here'"); got[0] != "still here" {
		t.Fatalf("after the cancel: %v", got)
	}
}

// proxyDiscovery: the destination declares our functions in schema pgcdc,
// with their documentation; called directly on the destination each one
// says to call it through pgcdc; a restart declares them again without
// harm; and a pgcdc schema that is not pgcdc's is left alone.
func proxyDiscovery(t *testing.T, dest *pgtest.Cluster) {
	ctx := testContext(t, time.Minute)
	p := startProxySetup(ctx, t, dest)
	direct := p.direct(ctx, t)
	got := rowsOf(ctx, t, direct, `SELECT p.proname, pg_get_function_result(p.oid), length(obj_description(p.oid, 'pg_proc')) > 100
		FROM pg_proc p WHERE p.pronamespace = 'pgcdc'::regnamespace ORDER BY 1`)
	var status bool
	for _, f := range got {
		status = status || strings.HasPrefix(f, "replication_status|TABLE(slot_name text, publication text, active boolean")
		if !strings.HasSuffix(f, "|true") {
			t.Errorf("declared without its documentation: %s", f)
		}
	}
	catalog, err := pgsql.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(catalog.Functions) || !status {
		t.Fatalf("pgcdc's functions on the destination:\n%s", strings.Join(got, "\n"))
	}
	_, err = direct.Exec(ctx, "SELECT * FROM pgcdc.replicate('s', 'p')")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "pgcdc.replicate() must be called through pgcdc") {
		t.Fatalf("a direct call: %v", err)
	}
	// Through pgcdc the same qualified call is ours.
	conn := p.srv.Connect(ctx, t)
	if _, err := conn.Exec(ctx, "SELECT * FROM pgcdc.replication_status()"); err != nil {
		t.Fatalf("pgcdc.replication_status() through pgcdc: %v", err)
	}
	// Start-up declares them again: idempotent.
	p.srv.Kill()
	p.srv.Restart(t)
	waitServing(ctx, t, p.srv)
	if strings.Contains(p.srv.Logs(), "declaring them in schema pgcdc failed") {
		t.Fatalf("declaring again failed:\n%s", p.srv.Logs())
	}

	// Someone else's schema pgcdc: pgcdc warns, leaves it, and serves.
	mustExec(ctx, t, direct, `CREATE DATABASE foreign_schema`)
	other := pgtestDSN(p.destDSN, "foreign_schema")
	if err := execDSN(ctx, other, `CREATE SCHEMA pgcdc; CREATE FUNCTION pgcdc.replicate() RETURNS int LANGUAGE sql AS 'SELECT 42'`); err != nil {
		t.Fatal(err)
	}
	srcDSN, _ := newSourceDB(ctx, t)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: srcDSN, Destination: other})
	waitServing(ctx, t, srv)
	if !srv.LogsContain(`schema \"pgcdc\" exists and was not created by pgcdc`, 5*time.Second) {
		t.Errorf("no warning about the foreign schema:\n%s", srv.Logs())
	}
	if got := rowsOf(ctx, t, srv.Connect(ctx, t), "SELECT 'serving'"); got[0] != "serving" {
		t.Fatalf("serving with a foreign schema: %v", got)
	}
	fc, err := pgx.Connect(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close(context.Background())
	if got := rowsOf(ctx, t, fc, "SELECT pgcdc.replicate()"); got[0] != "42" {
		t.Fatalf("the foreign pgcdc.replicate() = %v, want it untouched", got)
	}
}

// pgtestDSN is dsn with another database.
func pgtestDSN(dsn, db string) string {
	i := strings.LastIndex(dsn, "/")
	j := strings.Index(dsn[i:], "?")
	return dsn[:i+1] + db + dsn[i+j:]
}

func execDSN(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgbenchPath finds pgbench next to the server binaries.
func pgbenchPath(t *testing.T) string {
	t.Helper()
	bin, err := pgtest.BinDir()
	if err == nil {
		if p := filepath.Join(bin, "pgbench"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	requireClient(t, "pgbench is not installed (postgresql-contrib)")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// proxyPgbench: pgbench initialises its tables and runs select-only
// transactions through pgcdc, in the simple and the prepared protocol.
func proxyPgbench(t *testing.T, dest *pgtest.Cluster) {
	pgbench := pgbenchPath(t)
	ctx := testContext(t, 2*time.Minute)
	p := startProxySetup(ctx, t, dest)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, pgbench, append(args, "-h", "127.0.0.1", "-p", fmt.Sprint(p.srv.Port), "-U", "bench", "pgcdc")...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PG") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("-i", "-s", "1", "-q")
	for _, mode := range []string{"simple", "prepared"} {
		out := run("-S", "-M", mode, "-c", "2", "-j", "2", "-t", "300", "-n")
		if !strings.Contains(out, "number of transactions actually processed: 600/600") || !strings.Contains(out, "number of failed transactions: 0") {
			t.Errorf("pgbench -S -M %s through pgcdc:\n%s", mode, out)
		}
	}
}
