package sql_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/sql"
)

func TestClassifyEmbedded(t *testing.T) {
	c := mustCatalog(t)
	lsn := "0/16B3748"
	row := []any{"shop.orders", int64(2), int64(0), int64(1), int64(0), lsn, lsn}
	for _, tt := range []struct {
		query string
		calls []string
		// want is the rewritten statement with one row per call; params
		// the original numbers of its $n.
		want   string
		params []int
	}{
		{`SELECT count(*) FROM replicate('s', 'p')`, []string{"replicate"},
			`SELECT count(*) FROM (VALUES ('shop.orders'::text, 2::bigint, 0::bigint, 1::bigint, 0::bigint, '0/16B3748'::text, '0/16B3748'::text)) replicate(table_name, inserts, updates, deletes, truncates, start_lsn, end_lsn)`, nil},
		{`SELECT * FROM pgcdc.replicate($1, $2) AS r(t) WHERE inserts > $3`, []string{"replicate"},
			`SELECT * FROM (VALUES ('shop.orders'::text, 2::bigint, 0::bigint, 1::bigint, 0::bigint, '0/16B3748'::text, '0/16B3748'::text)) r(t, inserts, updates, deletes, truncates, start_lsn, end_lsn) WHERE inserts > $1`, []int{3}},
		{`WITH r AS (SELECT * FROM replicate($2, 'p')) INSERT INTO log SELECT now(), * FROM r WHERE $1 = 'x'`, []string{"replicate"}, "", []int{1}},
		{`SELECT * FROM replication_status() s JOIN shop.orders o ON true, replicate('a', 'b') UNION ALL SELECT * FROM (SELECT * FROM drop_replication('a', 'b')) d`,
			[]string{"replication_status", "replicate", "drop_replication"}, "", nil},
	} {
		_, e, err := c.ClassifyAny(tt.query)
		if err != nil || e == nil {
			t.Fatalf("ClassifyAny(%q) = %v, %v", tt.query, e, err)
		}
		var names []string
		results := make([][][]any, len(e.Calls))
		for i, call := range e.Calls {
			names = append(names, call.Function.Name)
			if call.Function.Name == "replicate" {
				results[i] = [][]any{row}
			}
		}
		if strings.Join(names, ",") != strings.Join(tt.calls, ",") {
			t.Errorf("%s: calls %v, want %v", tt.query, names, tt.calls)
		}
		got, params, err := e.Rewrite(results)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.query, got, tt.want)
		}
		if call, left, err := c.ClassifyAny(got); call != nil || left != nil || err != nil {
			t.Errorf("%s: a call is left: %s", tt.query, got)
		}
		if len(params) != len(tt.params) || (len(params) > 0 && params[0] != tt.params[0]) {
			t.Errorf("%s: params %v, want %v", tt.query, params, tt.params)
		}
		// With no rows, the items still describe their columns.
		empty, _, err := e.Rewrite(nil)
		if err != nil || !strings.Contains(empty, "WHERE false") {
			t.Errorf("%s: empty rewrite %s %v", tt.query, empty, err)
		}
	}

	// Values of every result type come out typed.
	_, e, _ := c.ClassifyAny(`SELECT count(*) FROM replication_status()`)
	got, _, err := e.Rewrite([][][]any{{{"s", nil, true, lsn, lsn, int64(5), "reserved", time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), []string{"a.b", "it's"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NULL::text", "true", "'2026-01-02 03:04:05.000006+00'::timestamptz", "ARRAY['a.b', 'it''s']::text[]"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewrite lacks %s: %s", want, got)
		}
	}
}

func TestClassifyEmbeddedRefusals(t *testing.T) {
	c := mustCatalog(t)
	for _, q := range []string{
		`SELECT * FROM t WHERE id IN (SELECT inserts FROM replicate('s', 'p'))`,
		`SELECT replicate('s', 'p') FROM t`,
		`SELECT (replicate('s', 'p')).inserts`,
		`SELECT * FROM t, LATERAL (SELECT * FROM replicate('s', 'p')) r`,
		`SELECT * FROM t, LATERAL replicate('s', 'p')`,
		`SELECT * FROM t JOIN u ON u.id = (SELECT count(*) FROM replicate('s', 'p'))`,
		`SELECT * FROM replicate('s', 'p') WITH ORDINALITY`,
		`SELECT * FROM ROWS FROM (replicate('s', 'p'))`,
		`SELECT * FROM t ORDER BY (SELECT count(*) FROM replication_status())`,
		`WITH RECURSIVE r AS (SELECT * FROM replicate('s', 'p')) SELECT * FROM r`,
		`UPDATE t SET n = r.inserts FROM replicate('s', 'p') r`,
		`DELETE FROM t USING replicate('s', 'p') r`,
		`CREATE TABLE x AS SELECT * FROM replicate('s', 'p') WHERE true`,
		`EXPLAIN SELECT count(*) FROM replicate('s', 'p')`,
		`INSERT INTO t SELECT 1 RETURNING (SELECT 1 FROM replicate('s', 'p'))`,
		`SELECT * FROM upper(replicate('s', 'p')::text)`,
	} {
		_, e, err := c.ClassifyAny(q)
		if code := sqlstateOf(err); code != "0A000" || e != nil {
			t.Errorf("ClassifyAny(%q) = %v, %v; want 0A000", q, e, err)
		}
	}
	// Arguments stay constants or parameters, as for the simple shapes.
	if _, _, err := c.ClassifyAny(`SELECT count(*) FROM t, replicate(t.slot, 'p')`); sqlstateOf(err) != "0A000" {
		t.Errorf("column reference argument: %v", err)
	}
	// The simple shapes keep their fast path, and passthrough stays so.
	if call, e, err := c.ClassifyAny(`SELECT * FROM replicate('s', 'p')`); call == nil || e != nil || err != nil {
		t.Errorf("simple shape: %v %v %v", call, e, err)
	}
	if call, e, err := c.ClassifyAny(`SELECT * FROM shop.orders WHERE note = 'replicate('`); call != nil || e != nil || err != nil {
		t.Errorf("passthrough: %v %v %v", call, e, err)
	}
}

// FuzzEmbedded: whatever the text, ClassifyAny and ParseCopy do not panic
// and fail with SQLSTATEs, and an Embedded rewrites, with and without
// rows, to a statement that parses and calls none of our functions.
func FuzzEmbedded(f *testing.F) {
	for _, q := range []string{
		`SELECT count(*) FROM replicate('s', 'p')`,
		`WITH r AS (SELECT * FROM replicate($1, $2)) INSERT INTO log SELECT now(), * FROM r WHERE $3 > 0`,
		`SELECT * FROM t JOIN replication_status() s(a, b) ON a = t.x UNION SELECT * FROM (SELECT * FROM drop_replication('a', 'b')) d`,
		`SELECT * FROM t WHERE x IN (SELECT inserts FROM replicate('s', 'p'))`,
		`COPY t (a, "B") FROM STDIN WITH (FORMAT csv, HEADER match, FORCE_NULL (a))`,
		`COPY (SELECT 1) TO STDOUT (FORMAT binary)`,
	} {
		f.Add(q, "x'y")
	}
	c := mustCatalog(f)
	f.Fuzz(func(t *testing.T, query, s string) {
		_, _, err := sql.ParseCopy(query)
		checkError(t, "ParseCopy", err)
		_, e, err := c.ClassifyAny(query)
		checkError(t, "ClassifyAny", err)
		if e == nil {
			return
		}
		// Our functions return Postgres text: valid UTF-8 without NULs.
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "?"), "\x00", "")
		results := make([][][]any, len(e.Calls))
		for i, call := range e.Calls {
			row := make([]any, len(call.Function.Result))
			for j := range row {
				row[j] = s
			}
			results[i] = [][]any{row, make([]any, len(row))}
		}
		for _, r := range [][][][]any{nil, results} {
			out, _, err := e.Rewrite(r)
			if err != nil {
				t.Fatalf("Rewrite(%q): %v", query, err)
			}
			if call, left, err := c.ClassifyAny(out); call != nil || left != nil || (err != nil && strings.Contains(err.Error(), "cannot be called")) {
				t.Fatalf("Rewrite(%q) = %q, which still calls our functions", query, out)
			}
		}
	})
}
