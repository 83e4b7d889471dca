package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// TestCompat is the compatibility suite of the catalog: the same tables
// (testdata/compat/setup.sql) on the source, which serves as the reference
// Postgres, and in pgcdc's DuckDB replica; the same questions put to both
// through real tools (psql's describe commands, pgJDBC's DatabaseMetaData
// and ResultSetMetaData, SQLAlchemy's inspector, and the catalog queries
// BI tools and drivers send, kept with their origin in
// testdata/compat/queries/); and the answers compared after normalising
// what legitimately differs (owner names, database names, OIDs, pgcdc's
// metadata columns). The reference also gets pgcdc's functions, declared
// from sql/catalog.sql as SQL stubs, so that \df pgcdc.* has an answer.
//
// A case listed in testdata/compat/known_differences.txt is expected to
// differ, for the reason given there (docs/compatibility.md explains each);
// it is logged, and fails once it matches, so that the list stays true.
func TestCompat(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	setup, err := os.ReadFile(filepath.Join("testdata", "compat", "setup.sql"))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, src, string(setup))
	mustExec(ctx, t, src, functionStubs(t))
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, t)
	mustExec(ctx, t, rep, `SELECT * FROM pgcdc.init_replication('compat', 'compat_pub', schema_name => 'shop', persist_snapshots => true)`)

	srcCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ref := compatEndpoint{host: srcCfg.Host, port: int(srcCfg.Port), user: srcCfg.User, password: srcCfg.Password, database: srcCfg.Database}
	got := compatEndpoint{host: "127.0.0.1", port: srv.Port, user: "analyst", password: srv.Password, database: "pgcdc"}
	known := knownDifferences(t)
	var s compatScore

	t.Run("psql", func(t *testing.T) {
		if _, err := exec.LookPath("psql"); err != nil {
			t.Skip("psql is not installed (.ci/run installs postgresql-client): ", err)
		}
		commands := []string{`\dt shop.*`, `\d shop.orders`, `\d shop.order_lines`, `\d+ shop.customers`, `\di shop.*`,
			`\dv shop.*`, `\df pgcdc.*`, `\dn`, `\dT shop.*`, `\dt`}
		answers := func(e compatEndpoint) []string {
			out := make([]string, len(commands))
			for i, c := range commands {
				o, err := e.psql(ctx, c)
				out[i] = normalizeTable(withoutPublications(o), err)
			}
			return out
		}
		want, have := both(ref, got, answers)
		for i, c := range commands {
			s.compare(t, known, "psql "+c, want[i], have[i])
		}
		// \l and \du list the server's databases and roles, which the two
		// do not share: pgcdc has to answer them, not match them.
		for _, c := range []string{`\l`, `\du`} {
			if out, err := got.psql(ctx, c); err != nil {
				s.fail(t, "psql "+c, fmt.Sprintf("%v\n%s", err, out))
			} else {
				s.pass("psql " + c)
			}
		}
	})

	t.Run("jdbc", func(t *testing.T) {
		java, err := exec.LookPath("java")
		if err != nil {
			requireClient(t, "no java: %v", err)
		}
		if _, err := os.Stat(jdbcJar); err != nil {
			requireClient(t, "no pgJDBC jar (libpostgresql-jdbc-java): %v", err)
		}
		want, have := both(ref, got, func(e compatEndpoint) map[string]string {
			return splitCases(e.run(ctx, t, java, "-cp", jdbcJar, "-Xshare:auto", "-XX:TieredStopAtLevel=1",
				filepath.Join(clientsDir(t), "java", "Metadata.java"), e.jdbcURL()))
		})
		// information_schema's own types (its domains and its views' row
		// types) are not emulated: their rows are left out on both sides.
		infoTypes := rowsOf(ctx, t, src, `SELECT typname FROM pg_type WHERE typnamespace = 'information_schema'::regnamespace`)
		for _, m := range []map[string]string{want, have} {
			m["getTypeInfo"] = withoutRows(m["getTypeInfo"], infoTypes)
		}
		compareCases(t, &s, known, "jdbc ", want, have)
	})

	t.Run("sqlalchemy", func(t *testing.T) {
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import sqlalchemy, psycopg2").Run(); err != nil {
			requireClient(t, "no SQLAlchemy with psycopg2 for %s (python3-sqlalchemy): %v", py, err)
		}
		script := filepath.Join("testdata", "compat", "sqlalchemy_inspector.py")
		want, have := both(ref, got, func(e compatEndpoint) map[string]string { return splitCases(e.run(ctx, t, py, script)) })
		compareCases(t, &s, known, "sqlalchemy ", want, have)
	})

	t.Run("queries", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "compat", "queries", "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no queries in testdata/compat/queries: %v", err)
		}
		refConn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer refConn.Close(context.Background())
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := "query " + strings.TrimSuffix(filepath.Base(f), ".sql")
			want, have := both(refConn, rep, func(c *pgx.Conn) string { return textResult(ctx, c, string(b)) })
			s.compare(t, known, name, want, have)
		}
	})

	for name := range known {
		if !s.seen[name] {
			t.Errorf("known_differences.txt lists %q, which the suite has no case for", name)
		}
	}
	t.Logf("compatibility suite: %d of %d cases match Postgres, %d known differences, %d failed",
		s.passed, s.passed+s.failed+s.known, s.known, s.failed)
}

// compatEndpoint is one side of the comparison.
type compatEndpoint struct {
	host, user, password, database string
	port                           int
}

func (e compatEndpoint) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGHOST="+e.host, "PGPORT="+strconv.Itoa(e.port), "PGUSER="+e.user, "PGPASSWORD="+e.password,
		"PGDATABASE="+e.database, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10",
		"COMPAT_USER="+e.user, "COMPAT_PASSWORD="+e.password,
		fmt.Sprintf("COMPAT_URL=postgresql://%s@%s:%d/%s?sslmode=disable", e.user, e.host, e.port, e.database))
}

func (e compatEndpoint) jdbcURL() string {
	return fmt.Sprintf("jdbc:postgresql://%s:%d/%s?sslmode=disable", e.host, e.port, e.database)
}

// psql runs one backslash command, unaligned, without footers.
func (e compatEndpoint) psql(ctx context.Context, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-A", "-F", "|", "-P", "footer=off", "-v", "ON_ERROR_STOP=1", "-c", command)
	cmd.Env = e.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs a client program against e and returns its output.
func (e compatEndpoint) run(ctx context.Context, t *testing.T, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Called from both's goroutine: Errorf, and the empty answer fails
		// the comparison.
		t.Errorf("%s against %s:%d: %v\n%s", filepath.Base(args[len(args)-1]), e.host, e.port, err, out)
	}
	return string(out)
}

// compatScore counts the cases.
type compatScore struct {
	passed, failed, known int
	seen                  map[string]bool
}

func (s *compatScore) pass(name string) {
	s.mark(name)
	s.passed++
}

func (s *compatScore) fail(t *testing.T, name, detail string) {
	s.mark(name)
	s.failed++
	t.Errorf("%s: %s", name, detail)
}

func (s *compatScore) mark(name string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[name] = true
}

// compare checks one case's normalised answers.
func (s *compatScore) compare(t *testing.T, known map[string]string, name, want, have string) {
	t.Helper()
	reason, isKnown := known[name]
	switch {
	case want == have && isKnown:
		s.fail(t, name, "matches Postgres now: remove it from testdata/compat/known_differences.txt (and docs/compatibility.md)")
	case want == have:
		s.pass(name)
	case isKnown:
		s.mark(name)
		s.known++
		t.Logf("%s: known difference (%s)\n%s", name, reason, lineDiff(want, have))
	default:
		s.fail(t, name, "differs from Postgres (- Postgres, + pgcdc)\n"+lineDiff(want, have))
	}
}

// splitCases splits a client's output into its "== name" cases, each
// normalised as a table.
func splitCases(out string) map[string]string {
	cases := map[string]string{}
	var name string
	var body []string
	flush := func() {
		if name != "" {
			cases[name] = normalizeTable(strings.Join(body, "\n"), nil)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "== "); ok {
			flush()
			name, body = n, nil
			continue
		}
		body = append(body, line)
	}
	flush()
	return cases
}

func compareCases(t *testing.T, s *compatScore, known map[string]string, prefix string, want, have map[string]string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("the reference run printed no cases")
	}
	for _, n := range names {
		w, h := want[n], have[n]
		if unorderedCases[prefix+n] {
			w, h = sortedRows(w), sortedRows(h)
		}
		s.compare(t, known, prefix+n, w, h)
	}
}

// Cells that legitimately differ between the reference and pgcdc, by
// column name (lower case): who owns objects, which database holds them,
// and OID-derived names.
var (
	ownerColumns    = map[string]bool{"owner": true, "schema_owner": true, "tableowner": true}
	databaseColumns = map[string]bool{"table_cat": true, "function_cat": true, "procedure_cat": true, "pktable_cat": true,
		"fktable_cat": true, "table_catalog": true, "catalog_name": true, "udt_catalog": true, "specific_catalog": true, "routine_catalog": true,
		"constraint_catalog": true, "type_cat": true}
	// Planner statistics: estimates, which the two keep differently.
	statisticsColumns = map[string]bool{"pages": true, "cardinality": true}
	oidSuffix         = regexp.MustCompile(`_[0-9]+$`)
)

// normalizeTable normalises a "|"-separated table with a header line:
// pgcdc's metadata columns are dropped (the source has no such columns),
// and owner, database and OID-derived cells are replaced by placeholders.
// Lines before the header (psql's titles) are kept as they are.
func normalizeTable(out string, err error) string {
	if err != nil {
		out = "ERROR " + out
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var header []string
	var b strings.Builder
	for _, line := range lines {
		if strings.Contains(line, "_pg_lsn") || strings.Contains(line, "_pg_deleted_ts") {
			continue
		}
		sep := " | "
		if !strings.Contains(line, sep) {
			sep = "|"
		}
		cells := strings.Split(line, sep)
		if header == nil && len(cells) > 1 {
			header = cells
		} else if header != nil && len(cells) == len(header) {
			for i, h := range header {
				switch h = strings.ToLower(strings.TrimSpace(h)); {
				case ownerColumns[h]:
					cells[i] = "<owner>"
				case databaseColumns[h] && cells[i] != "null" && cells[i] != "":
					cells[i] = "<database>"
				case statisticsColumns[h]:
					cells[i] = "<statistic>"
				case h == "specific_name":
					cells[i] = oidSuffix.ReplaceAllString(cells[i], "_<oid>")
				}
			}
			line = strings.Join(cells, sep)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// textResult runs a query with the simple protocol and renders its column
// names and rows as text, the way the server sent them.
func textResult(ctx context.Context, conn *pgx.Conn, query string) string {
	results, err := conn.PgConn().Exec(ctx, query).ReadAll()
	if err != nil {
		return "ERROR " + err.Error()
	}
	var b strings.Builder
	for _, r := range results {
		var names []string
		for _, f := range r.FieldDescriptions {
			names = append(names, f.Name)
		}
		b.WriteString(strings.Join(names, "|") + "\n")
		for _, row := range r.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				if v == nil {
					cells[i] = "NULL"
				} else {
					cells[i] = string(v)
				}
			}
			b.WriteString(strings.Join(cells, "|") + "\n")
		}
	}
	return normalizeTable(b.String(), nil)
}

// knownDifferences reads testdata/compat/known_differences.txt: "case
// name<TAB>reason" lines.
func knownDifferences(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join("testdata", "compat", "known_differences.txt"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("known_differences.txt: no tab-separated reason in %q", line)
		}
		known[name] = reason
	}
	return known
}

// functionStubs declares pgcdc's functions in the reference Postgres from
// sql/catalog.sql, each as a LANGUAGE sql function that returns no rows,
// so that the catalog describes the same signatures and comments pgcdc
// serves.
func functionStubs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sql", "catalog.sql"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := pg_query.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range tree.Stmts {
		cf := st.Stmt.GetCreateFunctionStmt()
		if cf == nil {
			continue
		}
		var cols []string
		for _, p := range cf.Parameters {
			fp := p.GetFunctionParameter()
			if fp.Mode != pg_query.FunctionParameterMode_FUNC_PARAM_TABLE {
				continue
			}
			typ, err := pg_query.Deparse(&pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{
				SelectStmt: &pg_query.SelectStmt{TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(
					&pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}, TypeName: fp.ArgType}}}, -1)}}}}}}})
			if err != nil {
				t.Fatal(err)
			}
			cols = append(cols, strings.TrimPrefix(typ, "SELECT "))
		}
		body := "SELECT " + strings.Join(cols, ", ") + " WHERE false"
		for _, o := range cf.Options {
			de := o.GetDefElem()
			switch de.Defname {
			case "language":
				de.Arg = pg_query.MakeStrNode("sql")
			case "as":
				de.Arg = &pg_query.Node{Node: &pg_query.Node_List{List: &pg_query.List{Items: []*pg_query.Node{pg_query.MakeStrNode(body)}}}}
			}
		}
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		t.Fatal(err)
	}
	return "CREATE SCHEMA pgcdc;\n" + out
}

// lineDiff shows the lines only the reference has (-) and only pgcdc has
// (+), in order, by longest common subsequence.
func lineDiff(want, have string) string {
	a, b := strings.Split(want, "\n"), strings.Split(have, "\n")
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}

// withoutPublications drops psql's "Publications:" footer: the source's
// tables are published for replication, the replica's are not published.
func withoutPublications(out string) string {
	var b strings.Builder
	skip := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "Publications:":
			skip = true
			continue
		case skip && strings.HasPrefix(line, "    "):
			continue
		}
		skip = false
		b.WriteString(line + "\n")
	}
	return b.String()
}

// unorderedCases are answers whose row order is the server's physical
// order: pgJDBC's getTypeInfo orders by DATA_TYPE only, keeping pg_type's
// heap order within each.
var unorderedCases = map[string]bool{"jdbc getTypeInfo": true}

// sortedRows sorts a table's rows, keeping its header first.
func sortedRows(table string) string {
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) < 2 {
		return table
	}
	rows := append([]string(nil), lines[1:]...)
	sort.Strings(rows)
	return lines[0] + "\n" + strings.Join(rows, "\n") + "\n"
}

// withoutRows drops the rows whose first cell is one of names.
func withoutRows(table string, names []string) string {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var b strings.Builder
	for _, line := range strings.Split(table, "\n") {
		if first, _, _ := strings.Cut(line, " | "); drop[first] {
			continue
		}
		b.WriteString(line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// both asks the reference and pgcdc at the same time.
func both[E, R any](ref, got E, ask func(E) R) (want, have R) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		want = ask(ref)
	}()
	have = ask(got)
	<-done
	return want, have
}
