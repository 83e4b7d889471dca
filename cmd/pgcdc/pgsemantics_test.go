package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// The Postgres semantics of the DuckDB replica, checked against Postgres
// itself: each query runs on the source (a real Postgres, which holds the
// same table) and through pgcdc on the replica, and the answers must match
// in column names, type OIDs and modifiers, text values, binary values as
// drivers decode them, and SQLSTATEs.

const semanticsSchema = `
CREATE SCHEMA shop;
CREATE TABLE shop.t (
	id int PRIMARY KEY,
	j jsonb,
	tags text[],
	nums int[],
	grid int[][],
	n numeric(10,2),
	u uuid,
	iv interval,
	ts timestamptz);
INSERT INTO shop.t VALUES
	(1, '{"b": [1, 2.5], "a": "x <&>", "nested": {"k": null}}', '{a,"b c",NULL,"NULL",""}', '{1,NULL,3}', '{{1,2},{3,4}}',
	 10.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 year 2 mons 3 days 04:05:06.5', '2024-07-01 12:00:00.123456+00'),
	(2, '[1, "two", false]', '{}', '{}', '{}', -0.01, NULL, '-1 days', '1999-12-31 23:59:59+00'),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`

// startSemantics replicates semanticsSchema into a DuckDB replica and
// returns the source and pgcdc connections.
func startSemantics(ctx context.Context, t *testing.T) (src, rep *pgx.Conn, srcDSN string, srv *pgcdctest.Server) {
	t.Helper()
	srcDSN, src = newSourceDB(ctx, t)
	mustExec(ctx, t, src, semanticsSchema)
	srv = pgcdctest.Start(t, pgcdctest.Options{Source: srcDSN})
	rep = srv.Connect(ctx, t)
	slot := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	if _, err := rep.Exec(ctx, `SELECT * FROM init_replication($1, $2, schema_name => 'shop', persist_snapshots => true)`,
		slot+"_slot", slot+"_pub"); err != nil {
		t.Fatalf("init_replication: %v\n%s", err, srv.Logs())
	}
	return src, rep, srcDSN, srv
}

// answer is a query's result as a client sees it.
type answer struct {
	cols string // name:oid:typmod ...
	text string // rows in text format
	vals string // rows as pgx decodes the binary format
	code string // SQLSTATE of an error
}

// askBoth asks Postgres and pgcdc; once only asks in text format, for
// statements that cannot run twice.
func askBoth(ctx context.Context, t *testing.T, src, rep *pgx.Conn, q string, once bool) (answer, answer) {
	t.Helper()
	return ask(ctx, src, q, once), ask(ctx, rep, q, once)
}

func ask(ctx context.Context, c *pgx.Conn, q string, once bool) answer {
	var a answer
	res := c.PgConn().ExecParams(ctx, q, nil, nil, nil, nil).Read()
	if res.Err != nil {
		a.code = pgCode(res.Err)
		return a
	}
	for _, f := range res.FieldDescriptions {
		a.cols += fmt.Sprintf("%s:%d:%d ", f.Name, f.DataTypeOID, f.TypeModifier)
	}
	for _, row := range res.Rows {
		for _, v := range row {
			if v == nil {
				a.text += "NULL|"
			} else {
				a.text += string(v) + "|"
			}
		}
		a.text += "\n"
	}
	if once {
		return a
	}
	rows, err := c.Query(ctx, q)
	if err != nil {
		a.code = pgCode(err)
		return a
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			a.vals = "error: " + err.Error()
			break
		}
		a.vals += fmt.Sprintf("%v\n", vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.code = pgCode(err)
	}
	return a
}

// TestPostgresSemanticsMatchPostgres compares pgcdc's answers over DuckDB
// with Postgres's for the same queries.
func TestPostgresSemanticsMatchPostgres(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep, _, _ := startSemantics(ctx, t)
	for _, q := range []string{
		// Types: jsonb, arrays (one and two dimensions, NULLs, empty),
		// numeric with typmod, uuid, interval, timestamptz.
		`SELECT id, j, tags, nums, grid, n, u, iv, ts FROM shop.t ORDER BY id`,
		// Names and integer division.
		`SELECT count(*), id + 1, id::text, 7/2, -7/2, 7 % 3, id AS x, coalesce(id, 0) FROM shop.t GROUP BY id ORDER BY id`,
		`SELECT 1 UNION ALL SELECT 2`,
		// Errors.
		`SELECT 1/0`,
		`SELECT id / (id - 1) FROM shop.t`,
		`SELECT 5 % 0`,
		`SELECT * FROM shop.nosuch`,
		`SELECT nosuch FROM shop.t`,
		`SELECT 'x'::int`,
		`SELECT nosuchfn(1)`,
		`SELECT 1 +`,
	} {
		want, got := askBoth(ctx, t, src, rep, q, false)
		if got != want {
			t.Errorf("%s\npgcdc:    %+v\npostgres: %+v", q, got, want)
		}
	}
}

// TestPostgresSessionSemantics: TimeZone, search_path, statement_timeout,
// read-only transactions, PREPARE and cursors, compared with Postgres.
func TestPostgresSessionSemantics(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep, _, _ := startSemantics(ctx, t)
	steps := []string{
		`SET TimeZone = 'Asia/Kolkata'`,
		`SHOW TimeZone`,
		`SELECT ts FROM shop.t ORDER BY id`,
		`SET TIME ZONE 'America/New_York'`,
		`SELECT ts FROM shop.t ORDER BY id`,
		`RESET TimeZone`,
		`SET search_path TO shop, public`,
		`SHOW search_path`,
		`SELECT count(*) FROM t`,
		`SET search_path TO "$user", nosuch, shop`,
		`SHOW search_path`,
		`SELECT id FROM t ORDER BY id`,
		`RESET search_path`,
		`SELECT count(*) FROM t`,
		`BEGIN READ ONLY`,
		`SHOW transaction_read_only`,
		`INSERT INTO shop.t (id) VALUES (9)`,
		`ROLLBACK`,
		`SET default_transaction_read_only = on`,
		`DELETE FROM shop.t`,
		`BEGIN READ WRITE`,
		`SHOW transaction_read_only`,
		`ROLLBACK`,
		`SET default_transaction_read_only = off`,
		`PREPARE q(int, text) AS SELECT id, $2 AS s FROM shop.t WHERE id > $1 ORDER BY id`,
		`EXECUTE q(1, 'x')`,
		`PREPARE q(int) AS SELECT $1`,
		`DEALLOCATE q`,
		`DEALLOCATE q`,
		`PREPARE q2 AS SELECT 1`,
		`DEALLOCATE ALL`,
		`EXECUTE q2`,
		`DECLARE c CURSOR FOR SELECT id FROM shop.t`,
		`BEGIN`,
		`DECLARE c CURSOR FOR SELECT id, n FROM shop.t ORDER BY id`,
		`FETCH 2 FROM c`,
		`FETCH NEXT FROM c`,
		`FETCH ALL FROM c`,
		`CLOSE c`,
		`FETCH 1 FROM c`,
		`ROLLBACK`,
		`SET statement_timeout = 200`,
		`SHOW statement_timeout`,
		`RESET statement_timeout`,
	}
	for _, q := range steps {
		want, got := askBoth(ctx, t, src, rep, q, true)
		if got != want {
			t.Errorf("%s\npgcdc:    %+v\npostgres: %+v", q, got, want)
		}
	}
	// statement_timeout cancels: pg_sleep on Postgres, a long join on DuckDB.
	for _, c := range []struct {
		conn *pgx.Conn
		q    string
	}{{src, "SELECT pg_sleep(5)"}, {rep, "SELECT count(*) FROM range(1000000000) a, range(1000) b"}} {
		mustExec(ctx, t, c.conn, "SET statement_timeout = '100ms'")
		start := time.Now()
		_, err := c.conn.Exec(ctx, c.q)
		if pgCode(err) != "57014" || !strings.Contains(err.Error(), "statement timeout") || time.Since(start) > 5*time.Second {
			t.Errorf("%s with statement_timeout 100ms: %v after %v, want 57014", c.q, err, time.Since(start))
		}
		mustExec(ctx, t, c.conn, "RESET statement_timeout")
	}
	// Isolation: DuckDB's snapshot isolation is Postgres's REPEATABLE READ.
	if got := rowsOf(ctx, t, rep, "SHOW transaction_isolation"); len(got) != 1 || got[0] != "repeatable read" {
		t.Errorf("transaction_isolation: %v", got)
	}
	if _, err := rep.Exec(ctx, "BEGIN ISOLATION LEVEL SERIALIZABLE"); pgCode(err) != "0A000" {
		t.Errorf("BEGIN ISOLATION LEVEL SERIALIZABLE: %v, want 0A000", err)
	}
}

// TestPostgresSemanticsDrivers: psycopg2 (jsonb to dict, arrays to lists, a
// named cursor) and node-postgres (array and jsonb parsing) see the same
// Python and JavaScript values through pgcdc as from Postgres.
func TestPostgresSemanticsDrivers(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	_, _, srcDSN, srv := startSemantics(ctx, t)
	repDSN := srv.DSN()

	t.Run("psycopg2", func(t *testing.T) {
		python := findPsycopg2(t)
		script := `
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("SELECT id, j, tags, nums, grid, n, iv, ts FROM shop.t ORDER BY id")
for row in cur.fetchall():
    print([(type(v).__name__, v) for v in row])
print([d.name for d in cur.description])
named = conn.cursor(name="stream")
named.itersize = 2
named.execute("SELECT id, j FROM shop.t ORDER BY id")
print([r for r in named])
named.close()
conn.rollback()
`
		run := func(dsn string) string {
			out, err := exec.CommandContext(ctx, python, "-c", script, dsn).CombinedOutput()
			if err != nil {
				t.Fatalf("psycopg2 against %s: %v\n%s", dsn, err, out)
			}
			return string(out)
		}
		if want, got := run(srcDSN), run(repDSN); got != want {
			t.Errorf("pgcdc:\n%s\npostgres:\n%s", got, want)
		}
	})

	t.Run("psql", func(t *testing.T) {
		psql, err := exec.LookPath("psql")
		if err != nil {
			requireClient(t, "no psql: %v", err)
		}
		script := `
SELECT id, j, tags, grid, n, iv, ts FROM shop.t ORDER BY id;
SELECT count(*), 7/2, id::text FROM shop.t GROUP BY id ORDER BY id;
SET TimeZone = 'America/New_York';
SELECT ts FROM shop.t ORDER BY id;
SELECT 1/0;
BEGIN;
DECLARE c CURSOR FOR SELECT id, tags FROM shop.t ORDER BY id;
FETCH 2 FROM c;
FETCH ALL FROM c;
COMMIT;
`
		run := func(dsn string) string {
			cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-d", dsn, "-f", "-")
			cmd.Stdin = strings.NewReader(script)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("psql against %s: %v\n%s", dsn, err, out)
			}
			// psql prefixes errors with the script's line: the same on both.
			return string(out)
		}
		if want, got := run(srcDSN), run(repDSN); got != want {
			t.Errorf("pgcdc:\n%s\npostgres:\n%s", got, want)
		}
	})

	t.Run("node-postgres", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			requireClient(t, "no node: %v", err)
		}
		dir := filepath.Join(clientsDir(t), "node")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg", "package.json")); err != nil {
			requireClient(t, "node-postgres is not installed in %s (npm ci there): %v", dir, err)
		}
		script := `
const { Client } = require('pg');
(async () => {
  const c = new Client({ connectionString: process.argv[1] });
  await c.connect();
  const r = await c.query('SELECT id, j, tags, nums, grid, n FROM shop.t ORDER BY id');
  console.log(JSON.stringify(r.rows));
  console.log(JSON.stringify(r.fields.map(f => [f.name, f.dataTypeID])));
  const b = await c.query({ text: 'SELECT tags, nums FROM shop.t WHERE id = $1', values: [1], rowMode: 'array' });
  console.log(JSON.stringify(b.rows));
  await c.end();
})().catch(e => { console.error(e); process.exit(1); });
`
		run := func(dsn string) string {
			cmd := exec.CommandContext(ctx, node, "-e", script, dsn)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node-postgres against %s: %v\n%s", dsn, err, out)
			}
			return string(out)
		}
		if want, got := run(pgURL(srcDSN)), run(pgURL(repDSN)); got != want {
			t.Errorf("pgcdc:\n%s\npostgres:\n%s", got, want)
		}
	})
}

// pgURL turns a key=value DSN into the URL form node-postgres reads.
func pgURL(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return dsn
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	u := "postgresql://" + kv["user"]
	if kv["password"] != "" {
		u += ":" + kv["password"]
	}
	return u + "@" + kv["host"] + ":" + kv["port"] + "/" + kv["dbname"]
}
