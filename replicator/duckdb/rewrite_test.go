package duckdb

import (
	"strings"
	"testing"
)

func testRewriter() *catalogRewriter {
	return &catalogRewriter{
		relations: map[string]string{"pg_class": "pg", "pg_namespace": "pg", "pg_attribute": "pg", "info.columns": "info"},
		functions: map[string]bool{"pg_get_userbyid": true, "format_type": true, "pg_table_is_visible": true, "quote_ident": true},
	}
}

// TestRewrite checks each rewrite on the parse tree by what DuckDB is
// given: the deparsed statement.
func TestRewrite(t *testing.T) {
	r := testRewriter()
	for _, c := range []struct {
		name, in string
		want     []string // substrings of the result
		not      []string // substrings the result must not have
	}{
		{"catalog relation", "SELECT relname FROM pg_catalog.pg_class c", []string{"_pgcdc_catalog.pg.pg_class c"}, []string{"pg_catalog.pg_class"}},
		{"unqualified catalog relation keeps its name", "SELECT pg_class.relname FROM pg_class",
			[]string{"_pgcdc_catalog.pg.pg_class pg_class", "pg_class.relname"}, nil},
		{"information_schema", "SELECT column_name FROM information_schema.columns", []string{"_pgcdc_catalog.info.columns"}, nil},
		{"unknown pg_catalog relation is left to DuckDB", "SELECT * FROM pg_catalog.pg_nothing", []string{"pg_catalog.pg_nothing"}, nil},
		{"catalog function", "SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c",
			[]string{"_pgcdc_catalog.pg.pg_get_userbyid(c.relowner) AS pg_get_userbyid"}, nil},
		{"other pg_catalog function loses the qualifier", "SELECT pg_catalog.lower(relname) FROM pg_catalog.pg_class",
			[]string{"lower(relname)"}, []string{"pg_catalog.lower"}},
		{"regex operator", "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default",
			[]string{"regexp_matches(c.relname, '^(orders)$')"}, []string{"OPERATOR", "COLLATE"}},
		{"negated case-insensitive regex", "SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname !~* '^pg_'",
			[]string{"NOT regexp_matches(n.nspname, '^pg_', 'i')"}, nil},
		{"regclass of a name", "SELECT 'shop.orders'::regclass", []string{"_pgcdc_catalog.pg.regclass_in('shop.orders')"}, nil},
		{"regclass of an OID column", "SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c", []string{`c.oid::"bigint" AS oid`}, nil},
		{"OID to name", "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c", []string{"_pgcdc_catalog.pg.regclass_out(c.oid)"}, nil},
		{"oid and name types", "SELECT '1'::oid, 'x'::name, 'r'::\"char\"", []string{`'1'::"bigint" AS oid`, `'x'::"varchar" AS name`, `'r'::"varchar" AS "char"`}, nil},
		{"= ANY of an array column", "SELECT 1 FROM pg_catalog.pg_attribute a, pg_catalog.pg_class c WHERE a.attnum = ANY(c.relnatts)",
			[]string{"list_contains(c.relnatts, a.attnum)"}, []string{"ANY"}},
		{"= ANY of a constant stays", "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relkind = ANY('{r,v}')", []string{"ANY"}, nil},
		{"format with %I", "SELECT format('%I.%I', 'a b', 'c')",
			[]string{`concat(_pgcdc_catalog.pg.quote_ident('a b'::"varchar"), '.', _pgcdc_catalog.pg.quote_ident('c'::"varchar")) AS format`}, nil},
		{"scalar function in FROM", "SELECT s[1] FROM string_to_array('a,b', ',') s", []string{"(SELECT string_to_array('a,b', ',') AS s) s"}, nil},
		{"generate_series alias names its column", "SELECT i FROM generate_series(1, 2) i, pg_catalog.pg_class",
			[]string{"generate_series(1, 2) i(i)"}, nil},
		{"server version setting", "SELECT current_setting('server_version_num')::int", []string{"'160000'::int4 AS current_setting"}, []string{"current_setting("}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := parsePostgres(c.in, r, nil).run
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s\n  became %s\n  want it to contain %s", c.in, got, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("%s\n  became %s\n  which still contains %s", c.in, got, n)
				}
			}
		})
	}
}

// TestRewriteLeavesOtherSQLAlone: statements that need no rewriting reach
// DuckDB exactly as the client wrote them, DuckDB's own dialect included.
func TestRewriteLeavesOtherSQLAlone(t *testing.T) {
	r := testRewriter()
	for _, q := range []string{
		"SELECT id, note FROM shop.orders WHERE id = $1",
		"FROM shop.orders SELECT id",                     // DuckDB only: the Postgres parser refuses it
		"SELECT * FROM pg_catalog.pg_class; SELECT 1",    // two statements: the session refuses them
		"SELECT list_transform([1, 2], x -> x + 1)",      // DuckDB lambdas
		"SELECT 'pg_class' AS name, 'OPERATOR(~)' AS op", // needles in strings only, nothing to rewrite
	} {
		if got := parsePostgres(q, r, nil).run; got != q {
			t.Errorf("%s\n  became %s", q, got)
		}
	}
	var none *catalogRewriter
	if got := parsePostgres("SELECT 1 FROM pg_catalog.pg_class", none, nil).run; got != "SELECT 1 FROM pg_catalog.pg_class" {
		t.Errorf("a nil rewriter changed the statement: %s", got)
	}
}

// BenchmarkParsePostgres is the Go side of preparing a statement: one
// parse, the rewrites, one deparse if anything changed.
func BenchmarkParsePostgres(b *testing.B) {
	r := testRewriter()
	for _, c := range []struct{ name, q string }{
		{"psql_dt", `SELECT n.nspname as "Schema", c.relname as "Name", pg_catalog.pg_get_userbyid(c.relowner) as "Owner" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2`},
		{"select", "SELECT 7/2 AS half, count(*) FROM range(10) r(i) WHERE i > 1"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parsePostgres(c.q, r, nil)
			}
		})
	}
}

// TestOnePass: the catalog and the semantics rewrites are made on one
// parse of the statement, and a / b is integer division only where both
// operands are known integers.
func TestOnePass(t *testing.T) {
	r := testRewriter()
	described := 0
	columns := func(schema, name string) (map[string]bool, bool) {
		described++
		if schema == "s" && name == "t" {
			return map[string]bool{"a": true, "b": false}, true
		}
		return nil, false
	}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"SELECT count(*)/2, relname FROM pg_catalog.pg_class", []string{"count(*) // CASE WHEN 2 = 0", "_pgcdc_catalog.pg.pg_class"}},
		{"SELECT a/2, b/2, x.a/2, a/b, -a/2 FROM s.t x", []string{"a // CASE", "b / CASE", "x.a // CASE", "a / CASE WHEN b = 0", "(- a) // CASE"}},
		{"SELECT a/2 FROM s.t, (SELECT 1.5 AS a) u", []string{"a / CASE"}},
		{"SELECT a/2 FROM s.t, s.u", []string{"a / CASE"}}, // u cannot be described
		{"PREPARE q(int, numeric) AS SELECT $1/2, $2/2", []string{"$1::int // CASE", "$2::numeric / CASE"}},
		{"SELECT interval '1 hour' / 2, 7.0 / 2, 10000000000 / 3", []string{"'1 hour'::interval / CASE", "7.0 / CASE", "10000000000 // CASE"}},
	} {
		got := parsePostgres(c.in, r, columns).run
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s\n  became %s\n  want it to contain %s", c.in, got, w)
			}
		}
	}
	if described != 3 {
		t.Errorf("relations described %d times, want 3: once a statement, per relation, and none where a subquery hides which table a column is from", described)
	}
}
