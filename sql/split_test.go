package sql_test

import (
	"reflect"
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"empty", "", nil},
		{"blank", "  \n\t ", nil},
		{"semicolons only", " ; ;; ", nil},
		{"comment only", "-- nothing to see", nil},
		{"block comment only", "/* a /* nested */ comment */ ;", nil},
		{"one", "select 1", []string{"select 1"}},
		{"one terminated", "  select 1 ;  ", []string{"select 1"}},
		{"two", "select 1; select 2;", []string{"select 1", "select 2"}},
		{"empty statements", "select 1;;; select 2", []string{"select 1", "select 2"}},
		{"semicolon in string", "select ';'; select 2", []string{"select ';'", "select 2"}},
		{"semicolon in identifier", `select 1 as ";"; select 2`, []string{`select 1 as ";"`, "select 2"}},
		{"semicolon in dollar quote", "select $$a;b$$; select 2", []string{"select $$a;b$$", "select 2"}},
		{"semicolon in comment", "select 1 /* ; */; select 2 -- ;\n", []string{"select 1 /* ; */", "select 2 -- ;"}},
		{"leading comment stays", "/* {\"app\": \"dbt\"} */ select * from pgcdc.replicate('s', 'p'); select 1",
			[]string{"/* {\"app\": \"dbt\"} */ select * from pgcdc.replicate('s', 'p')", "select 1"}},
		{"trailing comment dropped", "select 1; -- bye", []string{"select 1"}},
		{"function body", "CREATE FUNCTION f() RETURNS int AS $$ select 1; $$ LANGUAGE sql; select f()",
			[]string{"CREATE FUNCTION f() RETURNS int AS $$ select 1; $$ LANGUAGE sql", "select f()"}},
		// The scanner splitter drops these; Split must not.
		{"keywordless last", "select 1; SUMMARIZE t", []string{"select 1", "SUMMARIZE t"}},
		{"keywordless first", "SUMMARIZE t; select 1", []string{"SUMMARIZE t", "select 1"}},
		{"keywordless alone", "SUMMARIZE t;", []string{"SUMMARIZE t"}},
		{"stray parenthesis", "select 1); select 2; select 3", []string{"select 1)", "select 2", "select 3"}},
		{"unclosed parenthesis", "select (1; select 2", []string{"select (1; select 2"}},
		// What the scanner cannot read goes to the destination whole.
		{"unterminated string", "select 'abc; select 2", []string{"select 'abc; select 2"}},
		{"unterminated comment", "select 1; /* open", []string{"select 1; /* open"}},
		{"unterminated comment alone", "/* open", []string{"/* open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sql.Split(tt.query)
			if err != nil {
				t.Fatalf("Split(%q): %v", tt.query, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestSplitNUL(t *testing.T) {
	_, err := sql.Split("select 1;\x00 select 2")
	wantCode(t, err, "22021")
}

// TestSplitThenClassify is the caller's path for a simple-protocol query
// string: every piece is classified on its own.
func TestSplitThenClassify(t *testing.T) {
	c := mustCatalog(t)
	pieces, err := sql.Split("SET search_path = raw; /* dbt */ SELECT * FROM pgcdc.replicate('s', 'p'); SELECT count(*) FROM raw.orders;")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range pieces {
		call, err := c.Classify(p)
		switch {
		case err != nil:
			t.Fatalf("Classify(%q): %v", p, err)
		case call != nil:
			kinds = append(kinds, call.Function.Name)
		default:
			kinds = append(kinds, "passthrough")
		}
	}
	if want := []string{"passthrough", "replicate", "passthrough"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
}
