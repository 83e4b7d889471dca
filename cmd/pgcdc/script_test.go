package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Replication scenarios as data: each file in testdata/conformance is one
// scenario, run once per destination against a fresh source database and a
// pgcdc writing to a fresh replica.
//
// A file is a sequence of steps separated by blank lines; lines starting
// with # between steps are comments. A step is a command line, its input
// (SQL, until a line "----" or a blank line), and optionally, after "----",
// the output it must give, until a blank line:
//
//	source                 SQL on the source
//	pgcdc                  SQL on a pgcdc session (pgcdc's functions)
//	replica                SQL on the replica, as a client reads and writes it
//	                       (through pgcdc over DuckDB, the destination itself
//	                       over Postgres)
//
// Without an output section the SQL may hold several statements and only
// has to succeed. With one, it is a single query whose rows (columns
// joined by |, NULL as NULL) must be exactly the output. With error=SQLSTATE
// the statement must fail with that SQLSTATE, and each output line
// "message: text" or "hint: text" must appear in the error's message or
// hint ("hint:" alone: there is a hint); the session must stay usable.
//
//	compare-table T K...   every column of source table T, by name, equals
//	                       the replica's, and the replica has no column the
//	                       source lacks but its own _pg_ columns; values are
//	                       compared as text (a timestamptz prints in each
//	                       session's time zone: use compare), rows ordered
//	                       by columns K
//	compare                the rows of the source query on the first input
//	                       line equal those of the replica query on the
//	                       second (the first again when there is none)
//	columns S.T            the replica table's columns, "name type" per
//	                       line, types in the destination's own spelling
//	tables S               the replica tables in schema S, one per line
//
// only=NAME on any step runs it for that destination only: column types
// differ by destination. file=F on source, pgcdc and replica takes the SQL
// from testdata/conformance/F instead of the input (shop.sql is the shop
// schema most scenarios start from).
const scriptDir = "testdata/conformance"

type scriptStep struct {
	pos     string // file:line, for messages
	cmd     string
	args    []string
	opts    map[string]string
	input   []string
	want    []string
	hasWant bool
}

func parseScript(path string) ([]scriptStep, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []scriptStep
	var cur *scriptStep
	inWant := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			cur, inWant = nil, false
		case cur == nil && strings.HasPrefix(line, "#"):
		case cur == nil:
			fields := strings.Fields(line)
			steps = append(steps, scriptStep{pos: fmt.Sprintf("%s:%d", filepath.Base(path), n), cmd: fields[0], opts: map[string]string{}})
			cur = &steps[len(steps)-1]
			for _, f := range fields[1:] {
				if k, v, ok := strings.Cut(f, "="); ok {
					cur.opts[k] = v
				} else {
					cur.args = append(cur.args, f)
				}
			}
		case line == "----":
			if cur.hasWant {
				return nil, fmt.Errorf("%s:%d: a second ----", path, n)
			}
			cur.hasWant, inWant = true, true
		case inWant:
			cur.want = append(cur.want, line)
		default:
			cur.input = append(cur.input, line)
		}
	}
	return steps, sc.Err()
}

// scriptScenarios are the scenarios in testdata/conformance, by file name.
func scriptScenarios(t *testing.T) []scenario {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(scriptDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []scenario
	for _, p := range paths {
		steps, err := parseScript(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, scenario{name: strings.TrimSuffix(filepath.Base(p), ".txt"), run: func(t *testing.T, d *destination) {
			runScript(t, d, steps)
		}})
	}
	return out
}

func runScript(t *testing.T, d *destination, steps []scriptStep) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, "")
	for _, s := range steps {
		if only, ok := s.opts["only"]; ok && only != d.name {
			continue
		}
		s.run(ctx, t, src, r)
	}
}

func (s *scriptStep) run(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica) {
	t.Helper()
	sql := strings.Join(s.input, "\n")
	if f := s.opts["file"]; f != "" {
		b, err := os.ReadFile(filepath.Join(scriptDir, f))
		if err != nil {
			t.Fatalf("%s: %v", s.pos, err)
		}
		sql = string(b)
	}
	switch s.cmd {
	case "source", "pgcdc", "replica":
		conn := map[string]*pgx.Conn{"source": src, "pgcdc": r.pgcdc, "replica": r.data}[s.cmd]
		switch {
		case s.opts["error"] != "":
			s.expectError(ctx, t, conn, sql)
		case s.hasWant:
			s.check(t, s.rows(ctx, t, conn, sql))
		default:
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %s on the %s: %v", s.pos, sql, s.cmd, err)
			}
		}
	case "compare-table":
		if len(s.args) < 2 {
			t.Fatalf("%s: compare-table needs a table and the columns to order by", s.pos)
		}
		t.Logf("%s: compare-table %s", s.pos, s.args[0])
		sameTable(ctx, t, src, r, s.args[0], strings.Join(s.args[1:], ", "))
	case "compare":
		if len(s.input) == 0 || len(s.input) > 2 {
			t.Fatalf("%s: compare takes a source query and optionally a replica query, one line each", s.pos)
		}
		repSQL := s.input[len(s.input)-1]
		t.Logf("%s: compare", s.pos)
		sameRows(ctx, t, src, r.data, s.input[0], repSQL)
	case "columns":
		schema, table := splitTable(s.args[0])
		cols := s.rows(ctx, t, r.data, r.d.columnsSQL, schema, table)
		for i, c := range cols {
			cols[i] = strings.Replace(c, "|", " ", 1)
		}
		s.check(t, cols)
	case "tables":
		s.check(t, r.tables(ctx, t, s.args[0]))
	default:
		t.Fatalf("%s: unknown command %q", s.pos, s.cmd)
	}
}

// check compares got with the step's output; output that is not given is
// not checked.
func (s *scriptStep) check(t *testing.T, got []string) {
	t.Helper()
	if !s.hasWant {
		return
	}
	for i := range got {
		got[i] = strings.ReplaceAll(got[i], "\n", `\n`)
	}
	if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
		t.Fatalf("%s: %s %s\n%s\ngot:\n%s\nwant:\n%s", s.pos, s.cmd, strings.Join(s.args, " "), strings.Join(s.input, "\n"),
			strings.Join(got, "\n"), strings.Join(s.want, "\n"))
	}
}

func (s *scriptStep) expectError(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	code := s.opts["error"]
	rows, err := conn.Query(ctx, sql)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	if err == nil {
		t.Fatalf("%s: %s: no error, want SQLSTATE %s", s.pos, sql, code)
	}
	if got := pgCode(err); got != code {
		t.Fatalf("%s: %s: error %v (SQLSTATE %q), want SQLSTATE %s", s.pos, sql, err, got, code)
	}
	var pe *pgconn.PgError
	asPgError(err, &pe)
	for _, w := range s.want {
		field, text, _ := strings.Cut(w, ":")
		text = strings.TrimSpace(text)
		var have string
		switch field {
		case "message":
			have = pe.Message
		case "hint":
			have = pe.Hint
			if text == "" && have == "" {
				t.Fatalf("%s: %s: error %q has no hint", s.pos, sql, pe.Message)
			}
		default:
			t.Fatalf("%s: error output line %q is neither message: nor hint:", s.pos, w)
		}
		if !strings.Contains(have, text) {
			t.Fatalf("%s: %s: %s %q does not say %q", s.pos, sql, field, have, text)
		}
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("%s: session unusable after the error: %v", s.pos, err)
	}
}

// rows is rowsOf with the step's position in its failure.
func (s *scriptStep) rows(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := queryRows(ctx, conn, sql, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.pos, sql, err)
	}
	return rows
}

// splitTable splits schema.table; a name without a schema is in public.
func splitTable(name string) (string, string) {
	if schema, table, ok := strings.Cut(name, "."); ok {
		return schema, table
	}
	return "public", name
}
