package sql_test

import (
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

func TestTokens(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  string // kind:name-or-value, space-separated
	}{
		{`SELECT a, "B""c" FROM t`, `w:select w:a p:, q:b"c w:from w:t`},
		{`/* a /* nested */ still */ COPY t TO STDOUT -- c`, `w:copy w:t w:to w:stdout`},
		{`SELECT 'it''s', E'a\'b\n', $$x'y$$, $tag$a$$b$tag$`, `w:select s:it's p:, s:a'b` + "\n" + ` p:, s:x'y p:, s:a$$b`},
		{`SELECT 'a\' FROM t`, `w:select s:a\ w:from w:t`},
		{`SELECT $1, ?, $name, 1.5e3, .5, x$y`, `w:select n:$1 p:, n:? p:, n:$name p:, #:1.5e3 p:, #:.5 p:, w:x$y`},
		{`SELECT 'open`, `w:select !:'open`},
		{`SELECT /* open`, `w:select !:/* open`},
		{"--only a comment", ``},
	} {
		var got []string
		for tok := range sql.Tokens(tc.query) {
			if tc.query[tok.Pos:tok.Pos+len(tok.Text)] != tok.Text {
				t.Errorf("%q: token %q not at %d", tc.query, tok.Text, tok.Pos)
			}
			var s string
			switch tok.Kind {
			case sql.TokenWord:
				s = "w:" + tok.Name()
			case sql.TokenQuoted:
				s = "q:" + tok.Name()
			case sql.TokenString:
				s = "s:" + tok.StringValue()
			case sql.TokenParam:
				s = "n:" + tok.Text
			case sql.TokenNumber:
				s = "#:" + tok.Text
			case sql.TokenPunct:
				s = "p:" + tok.Text
			case sql.TokenInvalid:
				s = "!:" + tok.Text
			}
			got = append(got, s)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.query, strings.Join(got, " "), tc.want)
		}
	}
}

func TestTransactionCommand(t *testing.T) {
	for q, want := range map[string]string{
		"BEGIN":                              "begin",
		"begin isolation level serializable": "begin",
		"START TRANSACTION READ ONLY":        "begin read-only",
		"BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE": "begin",
		"COMMIT":                       "commit",
		"END TRANSACTION":              "commit",
		"ROLLBACK WORK":                "rollback",
		"ABORT":                        "rollback",
		"COMMIT AND CHAIN":             "no",
		"SAVEPOINT a":                  "no",
		"ROLLBACK TO SAVEPOINT a":      "no",
		"PREPARE TRANSACTION 'x'":      "no",
		"COMMIT PREPARED 'x'":          "no",
		"BEGIN; SELECT 1":              "no",
		"SELECT 1":                     "no",
		"BEGIN TRANSACTION; SELECT 1a": "no",
	} {
		cmd, ro, ok := sql.TransactionCommand(q)
		got := "no"
		if ok {
			got = map[sql.TxCommand]string{sql.TxBegin: "begin", sql.TxCommit: "commit", sql.TxRollback: "rollback"}[cmd]
			if ro {
				got += " read-only"
			}
		}
		if got != want {
			t.Errorf("%q: %s, want %s", q, got, want)
		}
	}
}

// FuzzTokens: any text lexes without panicking, every token is where it
// says, and tokens come in order without overlapping.
func FuzzTokens(f *testing.F) {
	for _, q := range []string{`SELECT 'a''b', E'\'', $t$x$t$, "q""q" /* /* */ */ -- x`, `$1 $x $ ? .5 1e5`, `E'`, `$a$`} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		end := 0
		for tok := range sql.Tokens(q) {
			if tok.Pos < end || tok.Text == "" || q[tok.Pos:tok.Pos+len(tok.Text)] != tok.Text {
				t.Fatalf("token %+v after offset %d", tok, end)
			}
			end = tok.Pos + len(tok.Text)
			_ = tok.Name()
			_ = tok.StringValue()
		}
	})
}
