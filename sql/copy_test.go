package sql_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/sql"
)

func TestCopiesFromClient(t *testing.T) {
	for q, want := range map[string]bool{
		"COPY t FROM STDIN":                          true,
		"copy t (a, b) from stdin with (format csv)": true,
		"COPY t TO STDOUT":                           false,
		"COPY t FROM '/tmp/f'":                       false,
		"COPY t FROM PROGRAM 'cat'":                  false,
		"SELECT 1":                                   false,
		"COPY t FROM STDIN; SELECT 1":                false,
		"not sql":                                    false,
	} {
		if got := sql.CopiesFromClient(q); got != want {
			t.Errorf("CopiesFromClient(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestParseCopy(t *testing.T) {
	for _, c := range []struct {
		q    string
		ok   bool
		code string
		want string // fmt of the parsed Copy, when ok and no error
	}{
		{q: "COPY t TO STDOUT", ok: true, want: `to "" "t" [] "" text '\t' "\\N" header=false`},
		{q: `copy "S"."T" (a, "B") from stdin with (format csv, header match, null 'x', delimiter ';')`, ok: true,
			want: `from "S" "T" [a B] "" csv ';' "x" header=true`},
		{q: "COPY t TO STDOUT WITH CSV HEADER DELIMITER AS '|'", ok: true, want: `to "" "t" [] "" csv '|' "" header=true`},
		{q: "COPY (SELECT 1 AS x) TO STDOUT (FORMAT binary)", ok: true, want: `to "" "" [] "SELECT 1 AS x" binary '\t' "\\N" header=false`},
		{q: "COPY t TO '/tmp/f'"},
		{q: "COPY t FROM PROGRAM 'cat'"},
		{q: "SELECT 1"},
		{q: "COPY t TO STDOUT (FORMAT xml)", ok: true, code: "22023"},
		{q: "COPY t TO STDOUT (FORMAT text, QUOTE '\"')", ok: true, code: "0A000"},
		{q: "COPY t TO STDOUT (FORMAT binary, NULL 'x')", ok: true, code: "42601"},
		{q: "COPY t TO STDOUT (DELIMITER ',,')", ok: true, code: "0A000"},
		{q: "COPY t TO STDOUT (FORMAT csv, DELIMITER '\"')", ok: true, code: "22023"},
		{q: "COPY t TO STDOUT (HEADER match)", ok: true, code: "0A000"},
		{q: "COPY t FROM STDIN (FORMAT csv, FORCE_QUOTE (a))", ok: true, code: "0A000"},
		{q: "COPY t TO STDOUT (FORMAT csv, FORCE_NULL (a))", ok: true, code: "0A000"},
		{q: "COPY t TO STDOUT (bogus 1)", ok: true, code: "42601"},
		{q: "COPY t TO STDOUT (FORMAT csv, FORMAT text)", ok: true, code: "42601"},
		{q: "COPY t FROM STDIN WHERE a > 1", ok: true, code: "0A000"},
	} {
		got, ok, err := sql.ParseCopy(c.q)
		if ok != c.ok || sqlstateOf(err) != c.code {
			t.Errorf("ParseCopy(%q) = ok %v, %v; want ok %v, SQLSTATE %q", c.q, ok, err, c.ok, c.code)
			continue
		}
		if got == nil || c.want == "" {
			continue
		}
		dir := "to"
		if got.From {
			dir = "from"
		}
		format := [...]string{"text", "csv", "binary"}[got.Options.Format]
		s := fmt.Sprintf("%s %q %q %v %q %s %q %q header=%v", dir, got.Schema, got.Table, got.Columns, got.Query, format,
			got.Options.Delimiter, got.Options.Null, got.Options.Header)
		if s != c.want {
			t.Errorf("ParseCopy(%q) = %s, want %s", c.q, s, c.want)
		}
	}
	if !sql.IsCopy("/* c */ copy t to stdout") || sql.IsCopy("SELECT 'copy'") {
		t.Error("IsCopy")
	}
}

func sqlstateOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
