package duckdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/replicator/replica"
	pgsql "github.com/pgcdc/pgcdc/sql"
)

// describe prepares q and returns its fields.
func describe(t *testing.T, s pgsql.Session, q string) []pgsql.Field {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := s.Prepare(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return p.Fields()
}

// TestResultTypesArePostgres: JSON is jsonb, lists are arrays of their
// element type, DECIMAL(p,s) carries numeric's typmod; before, all but the
// decimal were text and the typmod was -1.
func TestResultTypesArePostgres(t *testing.T) {
	s := openSession(t, openFile(t))
	fields := describe(t, s, `SELECT '{"b":1}'::json, [1,2]::int[], ['a']::varchar[], [[1.5]]::double[][], 1.50::decimal(5,2), 'x'::uuid[]`)
	want := []struct {
		oid    uint32
		typmod int32
	}{{pgtype.JSONBOID, -1}, {pgtype.Int4ArrayOID, -1}, {pgtype.TextArrayOID, -1}, {pgtype.Float8ArrayOID, -1},
		{pgtype.NumericOID, 5<<16 | 2 + 4}, {pgtype.UUIDArrayOID, -1}}
	for i, w := range want {
		if fields[i].OID != w.oid || fields[i].TypeMod != w.typmod {
			t.Errorf("column %d: OID %d typmod %d, want %d %d", i+1, fields[i].OID, fields[i].TypeMod, w.oid, w.typmod)
		}
	}
	rows := mustRun(t, s, `SELECT '{"bb":[1,2.5],"a":"<&>","c":null}'::json, [[1,2],[3,NULL]]::int[][], []::int[]`)
	if want := `{"a": "<&>", "c": null, "bb": [1, 2.5]}|{[1 2 3 <nil>] [{2 1} {2 1}] true}|{[] [] true}`; rows[0] != want {
		t.Errorf("values: %s\nwant %s", rows[0], want)
	}
	if _, _, err := run(s, `SELECT [[1,2],[3]]::int[][]`); sqlstate(err) != "2202E" {
		t.Errorf("ragged list: %v, want SQLSTATE 2202E", err)
	}
}

// TestColumnNamesArePostgres: FigureColname, not DuckDB's expression text
// (count_star(), (a + 1), CAST(a AS VARCHAR)).
func TestColumnNamesArePostgres(t *testing.T) {
	s := openSession(t, openFile(t))
	mustRun(t, s, "CREATE TABLE public.t (a int, b text)")
	for q, want := range map[string]string{
		"SELECT count(*), sum(a), a + 1, a::text, CAST(a AS bigint), '1'::int, b AS x FROM public.t GROUP BY a, b": "count,sum,?column?,a,a,int4,x",
		"SELECT *, coalesce(a, 1), (SELECT max(a) FROM public.t), CASE WHEN true THEN 1 END FROM public.t":         "a,b,coalesce,max,case",
		"SELECT 1 UNION ALL SELECT 2":                             "?column?",
		"VALUES (1, 'x')":                                         "column1,column2",
		"SELECT t.*, now() FROM public.t":                         "a,b,now",
		"SELECT [1] AS l, range(3) AS r":                          "l,r", // DuckDB syntax: its own names
		"INSERT INTO public.t VALUES (1, 'x') RETURNING a * 2, b": "?column?,b",
	} {
		var names []string
		for _, f := range describe(t, s, q) {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
}

// TestDivisionIsPostgres: integer division truncates and division by zero
// fails with 22012; DuckDB gave 3.5 and +Inf or NULL.
func TestDivisionIsPostgres(t *testing.T) {
	s := openSession(t, openFile(t))
	if got := mustRun(t, s, "SELECT 7/2, -7/2, 7 % 3, 7.0::double/2, 1/2.0::double"); got[0] != "3|-3|1|3.5|0.5" {
		t.Errorf("divisions: %s", got[0])
	}
	for _, q := range []string{"SELECT 1/0", "SELECT 1.0::double/0", "SELECT 5 % 0", "SELECT a/(a-1) FROM (VALUES (1)) v(a)"} {
		if _, _, err := run(s, q); sqlstate(err) != "22012" {
			t.Errorf("%s: %v, want SQLSTATE 22012", q, err)
		}
	}
	// The rewritten statement is printed back from the Postgres parse tree:
	// what the Postgres parser qualifies (pg_catalog.json) must still be
	// DuckDB's.
	if got := mustRun(t, s, `SELECT '{"a":4}'::json->>'a', substring('abc' from 2 for 1), 5/2`); got[0] != "4|b|2" {
		t.Errorf("rewritten statement: %s", got[0])
	}
	if got := mustRun(t, s, "SELECT 1/0 WHERE false"); len(got) != 0 {
		t.Errorf("a division never evaluated failed: %v", got)
	}
}

// TestDivisionByOperandTypes: only int / int is integer division; any
// other division is the type's own. Before, DuckDB's integer_division made
// every / integer division, so that interval / 2 failed (42883).
func TestDivisionByOperandTypes(t *testing.T) {
	d := openFile(t)
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		_, err := tx.EnsureTable(ctx, ordersTable())
		return err
	})
	s := openSession(t, d)
	if got := mustRun(t, s, "SELECT 7/2, 7.0/2, interval '1 hour' / 2, 7::int8/2::int2, (7+2)/2, count(*)/2, 10000000000/3, 7/2.0, 7::float8/2"); got[0] != "3|3.5|{1800000000 0 0 true}|3|4|0|3333333333|3.5|3.5" {
		// {1800000000 0 0 true} is 00:30:00, as pgtype renders it
		t.Errorf("divisions: %s", got[0])
	}
	fields := describe(t, s, "SELECT 7/2, 7.0/2, interval '1 hour' / 2")
	if fields[0].OID != pgtype.Int4OID || fields[2].OID != pgtype.IntervalOID {
		t.Errorf("7/2 is OID %d, interval / 2 OID %d; want int4 and interval", fields[0].OID, fields[2].OID)
	}
	// A replicated integer column, qualified or not, with an alias or
	// not; a numeric one divides as numbers do.
	for q, want := range map[string][]uint32{
		"SELECT id / 2, o.id / 2 FROM shop.orders o":                                       {pgtype.Int8OID, pgtype.Int8OID},
		"SELECT id / 2, amount / 2, orders.id / 2 FROM shop.orders":                        {pgtype.Int8OID, pgtype.Float8OID, pgtype.Int8OID},
		"SELECT id / 2 FROM (SELECT 1.5 AS id) s WHERE EXISTS (SELECT 1 FROM shop.orders)": {pgtype.Float8OID}, // not the table's id
		"WITH orders AS (SELECT 1.5 AS id) SELECT orders.id / 2 FROM orders":               {pgtype.Float8OID},
	} {
		fields := describe(t, s, q)
		for i, w := range want {
			if fields[i].OID != w {
				t.Errorf("%s: column %d is OID %d, want %d", q, i+1, fields[i].OID, w)
			}
		}
	}
	mustRun(t, s, "CREATE TABLE public.n (i int, x double)")
	mustRun(t, s, "INSERT INTO public.n VALUES (7, 7)")
	if got := mustRun(t, s, "SELECT i/2, x/2, n.i/2, i/2/2, -i/2 FROM public.n"); got[0] != "3|3.5|3|1|-3" {
		t.Errorf("columns: %s, want 3|3.5|3|1|-3", got[0])
	}
	for _, q := range []string{"SELECT 1/0", "SELECT 7.0/0", "SELECT interval '1 hour' / 0", "SELECT i/(i-7) FROM public.n", "SELECT x/0 FROM public.n"} {
		if _, _, err := run(s, q); sqlstate(err) != "22012" {
			t.Errorf("%s: %v, want SQLSTATE 22012", q, err)
		}
	}
}

// TestErrorsHaveSQLSTATEs: DuckDB's errors by Postgres condition.
func TestErrorsHaveSQLSTATEs(t *testing.T) {
	s := openSession(t, openFile(t))
	mustRun(t, s, "CREATE TABLE public.k (id int PRIMARY KEY, n int NOT NULL)")
	mustRun(t, s, "INSERT INTO public.k VALUES (1, 1)")
	for q, code := range map[string]string{
		"SELECT * FROM nosuch":                  "42P01",
		"SELECT nosuch FROM public.k":           "42703",
		"SELECT 1 +":                            "42601",
		"SELECT 'x'::int":                       "22P02",
		"SELECT nosuchfn(1)":                    "42883",
		"INSERT INTO public.k VALUES (1, 2)":    "23505",
		"INSERT INTO public.k VALUES (2, NULL)": "23502",
		"CREATE TABLE public.k (a int)":         "42P07",
		"SELECT 'x'::nosuchtype":                "42704",
		"SELECT id FROM public.k a, public.k b": "42702",
		"SELECT 2147483647::int + 1::int":       "22003",
	} {
		refused(t, s, q, code)
	}
	for q, msg := range map[string]string{
		"SELECT * FROM public.nosuch":   `relation "nosuch" does not exist`,
		"SELECT nosuch FROM public.k":   `column "nosuch" does not exist`,
		"SELECT nosuchfn(1)":            "function nosuchfn does not exist",
		"CREATE TABLE public.k (a int)": `relation "k" already exists`,
		"SELECT 1/0":                    "division by zero",
	} {
		_, _, err := run(s, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Message != msg || (pe.Detail == "") != (pe.Code == "22012") {
			t.Errorf("%s: %v, want message %q with DuckDB's as the detail", q, err, msg)
		}
	}
}

// TestSessionSettings: TimeZone moves timestamptz values, read-only
// transactions refuse writes, statement_timeout cancels, search_path takes
// a list. Before, all were accepted and ignored (or failed).
func TestSessionSettings(t *testing.T) {
	s := openSession(t, openFile(t))
	ss := s.(pgsql.SettingsSession)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mustRun(t, s, "CREATE TABLE public.w (a int)")

	if err := ss.ApplySetting(ctx, "timezone", "Asia/Kolkata"); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, s, "SELECT TIMESTAMPTZ '2024-07-01 12:00:00+00'"); !strings.HasPrefix(got[0], "2024-07-01 17:30:00 +0530") {
		t.Errorf("timestamptz in Asia/Kolkata: %s", got[0])
	}

	if err := ss.ApplySetting(ctx, "default_transaction_read_only", "on"); err != nil {
		t.Fatal(err)
	}
	refused(t, s, "INSERT INTO public.w VALUES (1)", "25006")
	mustRun(t, s, "BEGIN READ WRITE")
	mustRun(t, s, "INSERT INTO public.w VALUES (1)")
	mustRun(t, s, "COMMIT")
	if err := ss.ApplySetting(ctx, "default_transaction_read_only", "off"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, "BEGIN READ ONLY")
	if got := ss.TransactionSetting("transaction_read_only"); got != "on" {
		t.Errorf("transaction_read_only in BEGIN READ ONLY: %s", got)
	}
	refused(t, s, "DELETE FROM public.w", "25006")
	mustRun(t, s, "ROLLBACK")
	refused(t, s, "BEGIN ISOLATION LEVEL SERIALIZABLE", "0A000")

	if err := ss.ApplySetting(ctx, "statement_timeout", "100ms"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	refused(t, s, "SELECT count(*) FROM range(1000000000) a, range(1000) b", "57014")
	if time.Since(start) > 10*time.Second {
		t.Errorf("statement_timeout of 100ms took %v", time.Since(start))
	}
	if err := ss.ApplySetting(ctx, "statement_timeout", "0"); err != nil {
		t.Fatal(err)
	}

	mustRun(t, s, `CREATE SCHEMA "Sales"`)
	mustRun(t, s, `CREATE TABLE "Sales".r (x int)`)
	if err := ss.ApplySetting(ctx, "search_path", `"$user", nosuch, "Sales", public`); err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, "SELECT x FROM r, w")
	if err := ss.ApplySetting(ctx, "search_path", "_pgcdc"); sqlstate(err) != "42501" {
		t.Errorf("search_path _pgcdc: %v, want SQLSTATE 42501", err)
	}
}

// TestPrepareAndCursors: PREPARE with parameter types, and DECLARE, FETCH,
// MOVE and CLOSE, which DuckDB does not have.
func TestPrepareAndCursors(t *testing.T) {
	s := openSession(t, openFile(t))
	mustRun(t, s, "CREATE TABLE public.c AS SELECT i AS a FROM range(10) r(i)")
	mustRun(t, s, "PREPARE q(int, text) AS SELECT a, $2 AS s FROM public.c WHERE a > $1")
	if got := mustRun(t, s, "EXECUTE q(7, 'x')"); strings.Join(got, ",") != "8|x,9|x" {
		t.Errorf("EXECUTE: %v", got)
	}
	mustRun(t, s, "DEALLOCATE q")
	mustRun(t, s, "PREPARE n AS SELECT count(*), 7/2 FROM public.c")
	if f := describe(t, s, "EXECUTE n"); len(f) != 2 || f[0].Name != "count" || f[1].Name != "?column?" {
		t.Errorf("EXECUTE describes %v, want count and ?column?", f)
	}
	refused(t, s, "PREPARE n AS SELECT 1", "42P05")
	mustRun(t, s, "DEALLOCATE ALL")
	refused(t, s, "EXECUTE n", "26000")
	refused(t, s, "DEALLOCATE n", "26000")

	refused(t, s, "DECLARE c CURSOR FOR SELECT a FROM public.c", "25P01")
	mustRun(t, s, "BEGIN")
	mustRun(t, s, "DECLARE c CURSOR WITHOUT HOLD FOR SELECT a FROM public.c ORDER BY a")
	if f := describe(t, s, "FETCH FORWARD 3 FROM c"); len(f) != 1 || f[0].Name != "a" {
		t.Errorf("FETCH describes %v", f)
	}
	steps := []struct{ q, rows, tag string }{
		{"FETCH FORWARD 3 FROM c", "0,1,2", "FETCH 3"},
		{"MOVE 2 IN c", "", "MOVE 2"},
		{"FETCH NEXT FROM c", "5", "FETCH 1"},
		{"FETCH ALL FROM c", "6,7,8,9", "FETCH 4"},
		{"FETCH c", "", "FETCH 0"},
		{"CLOSE c", "", "CLOSE CURSOR"},
	}
	for _, st := range steps {
		rows, tag, err := run(s, st.q)
		if err != nil || strings.Join(rows, ",") != st.rows || tag != st.tag {
			t.Errorf("%s: %v %q %v, want %s %q", st.q, rows, tag, err, st.rows, st.tag)
		}
	}
	mustRun(t, s, "DECLARE d CURSOR FOR SELECT a FROM public.c")
	mustRun(t, s, "DECLARE h CURSOR WITH HOLD FOR SELECT a FROM public.c ORDER BY a")
	mustRun(t, s, "COMMIT")
	refused(t, s, "FETCH 1 FROM d", "34000") // ended with its block
	if got := mustRun(t, s, "FETCH 2 FROM h"); strings.Join(got, ",") != "0,1" {
		t.Errorf("WITH HOLD cursor after COMMIT: %v", got)
	}
	refused(t, s, "FETCH BACKWARD 1 FROM h", "55000")
	mustRun(t, s, "CLOSE h")
	refused(t, s, "CLOSE h", "34000")
}
