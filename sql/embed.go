package sql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Embedded is a statement that calls our functions in its FROM clause and
// does more than return their rows: an aggregate, a WHERE, a join with
// replica tables, a CTE, INSERT ... SELECT. The calls run first, each once,
// in the order they are written; then each call's FROM item is replaced by
// its rows, as a VALUES list with typed casts, and the statement goes to the
// destination.
//
// Only calls whose evaluation count the statement cannot change are taken:
// a FROM item of the statement itself, of a WITH query, of a set operation's
// arm or of a derived table (not LATERAL). A call anywhere else (a subquery
// in WHERE or the select list, a join condition, LATERAL, RETURNING, the
// arguments of another function) is refused with 0A000, because whether and
// how often it would run would be up to the destination's planner.
type Embedded struct {
	// Calls are the calls, in the order they run. Their Columns are all of
	// the function's result columns.
	Calls []*Call
	tree  *pg_query.ParseResult
	cat   *Catalog
	// aliases are the FROM items' aliases, one per call (nil: none).
	aliases []*pg_query.Alias
	names   []string // the function name as written, the item's name when unaliased
}

// ClassifyAny is Classify for the destinations that can run the rest of a
// statement: it returns a Call for the simple shapes (SELECT f(...),
// SELECT * FROM f(...)), an Embedded for a statement that uses our
// functions' rows in FROM, and (nil, nil, nil) for passthrough.
func (c *Catalog) ClassifyAny(query string) (*Call, *Embedded, error) {
	if !c.mentionsFunction(query) {
		return nil, nil, nil
	}
	call, wrongShape, err := c.classify(query)
	if err == nil {
		return call, nil, nil
	}
	if !wrongShape {
		return nil, nil, err
	}
	e, perr := c.embedded(query)
	if perr != nil {
		return nil, nil, perr
	}
	return nil, e, nil
}

// embedded finds the calls of a statement classify found the wrong shape
// for, and checks that each sits where it runs exactly once.
func (c *Catalog) embedded(query string) (*Embedded, *pgconn.PgError) {
	tree, err := pg_query.Parse(query)
	if err != nil || len(tree.GetStmts()) != 1 {
		return nil, newError(codeSyntaxError, "pgcdc: cannot parse the statement")
	}
	e := &Embedded{tree: tree, cat: c}
	w := &embedWalker{c: c, site: func(n *pg_query.Node, fc *pg_query.FuncCall, fn *Function) *pgconn.PgError {
		rf := n.GetRangeFunction()
		call := &Call{Function: fn, Form: FormTable}
		for i, rc := range fn.Result {
			call.Columns = append(call.Columns, OutputColumn{Name: rc.Name, Type: rc.Type, Index: i})
		}
		if a := rf.GetAlias(); a != nil && len(a.GetColnames()) > len(fn.Result) {
			return newError(codeInvalidColumnReference,
				"table %q has %d columns available but %d columns specified", a.GetAliasname(), len(fn.Result), len(a.GetColnames()))
		}
		if perr := call.compileArgs(fc.GetArgs()); perr != nil {
			return perr
		}
		e.Calls = append(e.Calls, call)
		e.aliases = append(e.aliases, rf.GetAlias())
		names := fc.GetFuncname()
		e.names = append(e.names, names[len(names)-1].GetString_().GetSval())
		return nil
	}}
	if perr := w.statement(tree.GetStmts()[0].GetStmt()); perr != nil {
		return nil, perr
	}
	if len(e.Calls) == 0 {
		// classify found a call, so the walker must have: be safe anyway.
		return nil, newError(codeFeatureNotSupported, "pgcdc: cannot find where the statement calls pgcdc's functions")
	}
	return e, nil
}

// embedWalker walks the parts of a statement that are evaluated once.
type embedWalker struct {
	c    *Catalog
	site func(n *pg_query.Node, fc *pg_query.FuncCall, fn *Function) *pgconn.PgError
}

func (w *embedWalker) statement(n *pg_query.Node) *pgconn.PgError {
	switch {
	case n.GetSelectStmt() != nil:
		return w.selectStmt(n.GetSelectStmt())
	case n.GetInsertStmt() != nil:
		ins := n.GetInsertStmt()
		if perr := w.with(ins.GetWithClause()); perr != nil {
			return perr
		}
		if s := ins.GetSelectStmt(); s != nil {
			if s.GetSelectStmt() == nil {
				return w.unsafe(s.ProtoReflect(), "")
			}
			if perr := w.selectStmt(s.GetSelectStmt()); perr != nil {
				return perr
			}
		}
		return w.rest(ins.ProtoReflect(), "with_clause", "select_stmt")
	}
	return w.unsafe(n.ProtoReflect(), "")
}

func (w *embedWalker) with(wc *pg_query.WithClause) *pgconn.PgError {
	for _, cte := range wc.GetCtes() {
		q := cte.GetCommonTableExpr().GetCtequery()
		if q.GetSelectStmt() == nil || cte.GetCommonTableExpr().GetCterecursive() || wc.GetRecursive() {
			if perr := w.unsafe(cte.ProtoReflect(), "WITH RECURSIVE or a data-modifying WITH query"); perr != nil {
				return perr
			}
			continue
		}
		if perr := w.selectStmt(q.GetSelectStmt()); perr != nil {
			return perr
		}
	}
	return nil
}

func (w *embedWalker) selectStmt(s *pg_query.SelectStmt) *pgconn.PgError {
	if perr := w.with(s.GetWithClause()); perr != nil {
		return perr
	}
	for _, arm := range []*pg_query.SelectStmt{s.GetLarg(), s.GetRarg()} {
		if arm != nil {
			if perr := w.selectStmt(arm); perr != nil {
				return perr
			}
		}
	}
	for _, item := range s.GetFromClause() {
		if perr := w.fromItem(item); perr != nil {
			return perr
		}
	}
	return w.rest(s.ProtoReflect(), "with_clause", "larg", "rarg", "from_clause")
}

func (w *embedWalker) fromItem(n *pg_query.Node) *pgconn.PgError {
	switch {
	case n.GetRangeFunction() != nil:
		rf := n.GetRangeFunction()
		if !rf.GetLateral() && !rf.GetOrdinality() && !rf.GetIsRowsfrom() && len(rf.GetColdeflist()) == 0 && len(rf.GetFunctions()) == 1 {
			items := rf.GetFunctions()[0].GetList().GetItems()
			if len(items) > 0 && (len(items) == 1 || len(items[1].GetList().GetItems()) == 0) {
				fc := items[0].GetFuncCall()
				if fn := w.c.plainCall(fc); fn != nil {
					for _, a := range fc.GetArgs() {
						if perr := w.unsafe(a.ProtoReflect(), ""); perr != nil {
							return perr
						}
					}
					return w.site(n, fc, fn)
				}
			}
		}
		return w.unsafe(n.ProtoReflect(), "LATERAL, WITH ORDINALITY, ROWS FROM or a column definition list")
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		for _, side := range []*pg_query.Node{j.GetLarg(), j.GetRarg()} {
			if perr := w.fromItem(side); perr != nil {
				return perr
			}
		}
		return w.rest(j.ProtoReflect(), "larg", "rarg")
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		if !rs.GetLateral() && rs.GetSubquery().GetSelectStmt() != nil {
			return w.selectStmt(rs.GetSubquery().GetSelectStmt())
		}
	}
	return w.unsafe(n.ProtoReflect(), "")
}

// rest checks the fields of m other than skip, where no call may be.
func (w *embedWalker) rest(m protoreflect.Message, skip ...string) *pgconn.PgError {
	var perr *pgconn.PgError
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if slices.Contains(skip, string(fd.Name())) || fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && perr == nil; i++ {
				perr = w.unsafe(l.Get(i).Message(), "")
			}
		} else {
			perr = w.unsafe(v.Message(), "")
		}
		return perr == nil
	})
	return perr
}

// unsafe refuses a call of ours anywhere in m.
func (w *embedWalker) unsafe(m protoreflect.Message, where string) *pgconn.PgError {
	fn := w.c.findCall(m)
	if fn == nil {
		return nil
	}
	e := newError(codeFeatureNotSupported, "pgcdc: %s() cannot be called here", fn.Name)
	e.Detail = "pgcdc runs its functions once, before the rest of the statement; here how often it runs would be up to the query plan (a subquery, a condition, the select list of a query with FROM, RETURNING, or an argument of another function)."
	if where != "" {
		e.Detail = "pgcdc runs its functions once, before the rest of the statement, so they cannot be used with " + where + "."
	}
	e.Hint = fmt.Sprintf("Call it in the FROM clause of the statement or of a WITH query: WITH r AS (SELECT * FROM %[1]s(...)) SELECT ... FROM r.", fn.Name)
	return e
}

// NumParams is the highest $n the statement uses.
func (e *Embedded) NumParams() int {
	n := 0
	visitParamRefs(e.tree.ProtoReflect(), func(p *pg_query.ParamRef) { n = max(n, int(p.GetNumber())) })
	return n
}

// CallParamOIDs are the types of the $n the calls' arguments use, one per
// $1..$NumParams (0 for the ones they do not).
func (e *Embedded) CallParamOIDs() []uint32 {
	out := make([]uint32, e.NumParams())
	for _, c := range e.Calls {
		for i, oid := range c.ParamOIDs() {
			if oid != 0 && i < len(out) {
				out[i] = oid
			}
		}
	}
	return out
}

// Rewrite returns the statement for the destination: each call's FROM item
// replaced by results[i] (rows in the function's result column order; nil
// for none, which still describes the columns), and the $n left outside
// the calls renumbered $1..$k; params[j] is the original number of $j+1.
func (e *Embedded) Rewrite(results [][][]any) (query string, params []int, err error) {
	tree := proto.Clone(e.tree).(*pg_query.ParseResult)
	var sites []*pg_query.Node
	w := &embedWalker{c: e.cat, site: func(n *pg_query.Node, _ *pg_query.FuncCall, _ *Function) *pgconn.PgError {
		sites = append(sites, n)
		return nil
	}}
	w.statement(tree.GetStmts()[0].GetStmt())
	if len(sites) != len(e.Calls) {
		return "", nil, fmt.Errorf("sql: %d call sites for %d calls", len(sites), len(e.Calls))
	}
	for i, n := range sites {
		var rows [][]any
		if results != nil {
			rows = results[i]
		}
		sub, err := e.subselect(i, rows)
		if err != nil {
			return "", nil, err
		}
		n.Node = sub.Node
	}
	renumber := map[int32]int32{}
	visitParamRefs(tree.ProtoReflect(), func(p *pg_query.ParamRef) {
		if _, ok := renumber[p.GetNumber()]; !ok {
			renumber[p.GetNumber()] = 0
		}
	})
	olds := make([]int, 0, len(renumber))
	for old := range renumber {
		olds = append(olds, int(old))
	}
	slices.Sort(olds)
	for i, old := range olds {
		renumber[int32(old)] = int32(i + 1)
	}
	visitParamRefs(tree.ProtoReflect(), func(p *pg_query.ParamRef) { p.Number = renumber[p.GetNumber()] })
	out, derr := pg_query.Deparse(tree)
	if derr != nil {
		return "", nil, fmt.Errorf("sql: deparse: %w", derr)
	}
	return out, olds, nil
}

// subselect is the FROM item that stands for call i's rows: a derived
// table with the call's alias, or the function's name, and typed columns.
func (e *Embedded) subselect(i int, rows [][]any) (*pg_query.Node, error) {
	call := e.Calls[i]
	var sb strings.Builder
	sb.WriteString("SELECT * FROM (")
	if len(rows) == 0 {
		sb.WriteString("SELECT ")
		for j, rc := range call.Function.Result {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("NULL::" + castType(rc.Type) + " AS " + QuoteIdentIfNeeded(rc.Name))
		}
		sb.WriteString(" WHERE false")
	} else {
		sb.WriteString("VALUES ")
		for r, row := range rows {
			if r > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('(')
			for j, rc := range call.Function.Result {
				if j > 0 {
					sb.WriteString(", ")
				}
				var v any
				if j < len(row) {
					v = row[j]
				}
				sb.WriteString(literal(v, rc.Type))
			}
			sb.WriteByte(')')
		}
	}
	sb.WriteString(") AS ")
	alias, cols := e.names[i], []string{}
	if a := e.aliases[i]; a != nil {
		alias = a.GetAliasname()
		for _, n := range a.GetColnames() {
			cols = append(cols, n.GetString_().GetSval())
		}
	}
	sb.WriteString(quoteIdent(alias))
	if len(rows) > 0 || len(cols) > 0 {
		// VALUES columns are column1, ...: name them; an alias's column
		// names rename the leading ones.
		sb.WriteByte('(')
		for j, rc := range call.Function.Result {
			if j > 0 {
				sb.WriteString(", ")
			}
			name := rc.Name
			if j < len(cols) {
				name = cols[j]
			}
			sb.WriteString(quoteIdent(name))
		}
		sb.WriteByte(')')
	}
	tree, err := pg_query.Parse(sb.String())
	if err != nil {
		return nil, fmt.Errorf("sql: rows of %s(): %w", call.Function.Name, err)
	}
	return tree.GetStmts()[0].GetStmt().GetSelectStmt().GetFromClause()[0], nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// castType spells a result type so that both Postgres and DuckDB take it.
// pg_lsn, which DuckDB lacks, becomes text.
func castType(t Type) string {
	switch t.OID {
	case pgtype.Int8OID:
		return "bigint"
	case pgtype.Int4OID:
		return "integer"
	case pgtype.BoolOID:
		return "boolean"
	case pgtype.TimestamptzOID:
		return "timestamptz"
	case pgtype.TextArrayOID:
		return "text[]"
	case pgtype.NumericOID:
		return "numeric"
	}
	return "text"
}

// literal writes v as a constant of type t.
func literal(v any, t Type) string {
	typ := castType(t)
	if v == nil {
		return "NULL::" + typ
	}
	switch x := v.(type) {
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int64:
		return strconv.FormatInt(x, 10) + "::" + typ
	case int32:
		return strconv.FormatInt(int64(x), 10) + "::" + typ
	case int:
		return strconv.Itoa(x) + "::" + typ
	case time.Time:
		return quoteLiteral(x.UTC().Format("2006-01-02 15:04:05.999999+00")) + "::" + typ
	case []string:
		if len(x) == 0 {
			return "CAST(ARRAY[] AS " + typ + ")"
		}
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = quoteLiteral(s)
		}
		return "CAST(ARRAY[" + strings.Join(q, ", ") + "] AS " + typ + ")"
	case string:
		return quoteLiteral(x) + "::" + typ
	case fmt.Stringer:
		return quoteLiteral(x.String()) + "::" + typ
	}
	return quoteLiteral(fmt.Sprint(v)) + "::" + typ
}

func visitParamRefs(m protoreflect.Message, f func(*pg_query.ParamRef)) {
	if p, ok := m.Interface().(*pg_query.ParamRef); ok {
		f(p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visitParamRefs(l.Get(i).Message(), f)
			}
		} else {
			visitParamRefs(v.Message(), f)
		}
		return true
	})
}
