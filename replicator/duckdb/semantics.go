package duckdb

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Postgres semantics DuckDB does not have by default, made good on the
// statement's parse tree (pg_query, the Postgres parser), never on its text:
//
//   - Integer division truncates (7/2 = 3): a / b becomes DuckDB's
//     integer division a // b where both operands are known to be
//     integers (integerDivisions); any other / is DuckDB's, which divides
//     intervals, doubles and decimals (a decimal quotient is a double).
//   - Division and modulo by zero fail with 22012: DuckDB returns NULL or
//     infinity, so the divisor of every / and % becomes
//     CASE WHEN d = 0 THEN error('division by zero') ELSE d END.
//   - Result columns get the names Postgres gives them (FigureColname):
//     count, sum, ?column?, the type name of a cast, ...
//
// Text the Postgres parser cannot read is DuckDB's own dialect: it runs
// unchanged, with DuckDB's column names.

// postgresSettings makes sure DuckDB's integer_division is off, as it is
// by default: set for the whole database, it made every / integer
// division, and interval / 2 failed. Integer division is written out where
// both operands are integers instead (integerDivisions).
func postgresSettings(ctx context.Context, db *sql.DB) error {
	var on bool
	if err := db.QueryRowContext(ctx, "SELECT current_setting('integer_division')").Scan(&on); err != nil {
		return err
	}
	if !on {
		return nil
	}
	_, err := db.ExecContext(ctx, "SET GLOBAL integer_division = false")
	return err
}

// pgStatement is what the Postgres parser makes of a client statement.
type pgStatement struct {
	// run is the text DuckDB runs: the client's, or the rewritten tree.
	run string
	// names are the result column names Postgres would give, target by
	// target; "*" stands for a star, which expands to DuckDB's names. Nil
	// when the statement has no target list pgcdc can name.
	names []string
	// stmt is the parsed statement; nil for text only DuckDB reads.
	stmt *pg_query.Node
}

// columnTypes describes a relation for integerColumn: its columns by lower
// case name, true for an integer one. ok is false for a relation it cannot
// describe.
type columnTypes func(schema, name string) (cols map[string]bool, ok bool)

// parsePostgres reads query with the Postgres parser, once, and makes one
// pass over the tree (treeWalk) for the catalog rewrites (r, which may be
// nil) and the semantics ones; the tree is deparsed only if something
// changed. Text it cannot parse, or more than one statement, is left to
// DuckDB as it is.
func parsePostgres(query string, r *catalogRewriter, columns columnTypes) (out pgStatement) {
	out = pgStatement{run: query}
	tree, err := pg_query.Parse(query)
	if err != nil || len(tree.GetStmts()) != 1 {
		return out
	}
	stmt := tree.GetStmts()[0].GetStmt()
	out.stmt = stmt
	out.names = resultNames(stmt)
	if stmt.GetDeclareCursorStmt() != nil {
		// Its query is deparsed and prepared on its own (prepareCursor).
		return out
	}
	// A tree shape the rewrites did not foresee must not take the session
	// down: the statement goes to DuckDB as the client wrote it.
	defer func() {
		if recover() != nil {
			out.run = query
		}
	}()
	w := &treeWalk{columns: columns}
	if r.needsCatalog(query) {
		w.r = r
	}
	if ps := stmt.GetPrepareStmt(); ps != nil && len(ps.GetArgtypes()) > 0 {
		// DuckDB's PREPARE takes no parameter types: each $n becomes
		// $n::type (paramRef) and the list goes.
		w.params, w.typed = ps.GetArgtypes(), map[*pg_query.ParamRef]bool{}
		ps.Argtypes = nil
		w.changed = true
	}
	w.message(tree.ProtoReflect())
	w.integerDivisions()
	if !w.changed {
		return out
	}
	if text, err := pg_query.Deparse(tree); err == nil {
		out.run = text
	}
	return out
}

// after rewrites n once its children have been: the divisor d of every /
// and % becomes CASE WHEN d = 0 THEN error('division by zero') ELSE d END,
// and each / is kept for integerDivisions.
func (w *treeWalk) after(n *pg_query.Node) {
	e := n.GetAExpr()
	if e == nil || e.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP || len(e.GetName()) != 1 || e.GetLexpr() == nil || e.GetRexpr() == nil {
		return
	}
	op := e.GetName()[0].GetString_().GetSval()
	switch op {
	case "/", "%":
		if op == "/" {
			w.divisions = append(w.divisions, e)
		}
		guard := nonZero(e.Rexpr)
		if w.guards == nil {
			w.guards = map[*pg_query.CaseExpr]*pg_query.Node{}
		}
		w.guards[guard.GetCaseExpr()] = e.Rexpr
		e.Rexpr = guard
		w.changed = true
	}
}

// integerDivisions makes a / b DuckDB's integer division, a // b, where
// both operands are integers, as Postgres divides int by int; DuckDB's /
// is left to divide everything else (interval, double, ...). It runs once
// the walk has seen the statement's relations.
func (w *treeWalk) integerDivisions() {
	for _, e := range w.divisions {
		if w.integer(e.Lexpr) && w.integer(e.Rexpr) {
			e.Name = []*pg_query.Node{pg_query.MakeStrNode("//")}
		}
	}
}

// integerFunctions are functions that return an integer whatever their
// arguments.
var integerFunctions = map[string]bool{"count": true, "length": true, "char_length": true, "character_length": true,
	"octet_length": true, "bit_length": true, "array_length": true, "cardinality": true, "strpos": true, "ascii": true}

// integerTypes are Postgres's integer types as the parser names them.
var integerTypes = map[string]bool{"int2": true, "int4": true, "int8": true, "smallint": true, "integer": true, "bigint": true, "int": true}

// integer reports whether n is known to be an integer: an integer
// constant, a cast to an integer type, a column of a relation whose DuckDB
// type is an integer, count(...), and arithmetic on those. Anything else is
// not known to be one.
func (w *treeWalk) integer(n *pg_query.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AConst:
		if x.AConst.GetIval() != nil {
			return true
		}
		if f := x.AConst.GetFval(); f != nil {
			// Too large for int4: int8 if it fits.
			_, err := strconv.ParseInt(f.GetFval(), 10, 64)
			return err == nil
		}
	case *pg_query.Node_TypeCast:
		name, array := typeName(x.TypeCast.GetTypeName())
		return !array && integerTypes[name]
	case *pg_query.Node_AExpr:
		e := x.AExpr
		if e.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP || len(e.GetName()) != 1 {
			return false
		}
		switch e.GetName()[0].GetString_().GetSval() {
		case "+", "-", "*", "/", "//", "%":
			return (e.GetLexpr() == nil || w.integer(e.GetLexpr())) && w.integer(e.GetRexpr())
		}
	case *pg_query.Node_CaseExpr:
		if d, ok := w.guards[x.CaseExpr]; ok {
			return w.integer(d)
		}
	case *pg_query.Node_FuncCall:
		fn := x.FuncCall.GetFuncname()
		return len(fn) == 1 && integerFunctions[fn[0].GetString_().GetSval()]
	case *pg_query.Node_ColumnRef:
		return w.integerColumn(x.ColumnRef)
	}
	return false
}

// integerColumn reports whether c names an integer column of one of the
// statement's relations. An unqualified name counts only when every
// relation in the statement is a table or view DuckDB can describe and
// exactly one has the column.
func (w *treeWalk) integerColumn(c *pg_query.ColumnRef) bool {
	if w.columns == nil {
		return false
	}
	var parts []string
	for _, f := range c.GetFields() {
		s := f.GetString_()
		if s == nil {
			return false
		}
		parts = append(parts, s.GetSval())
	}
	if len(parts) == 0 || len(parts) > 3 {
		return false
	}
	col, qual := strings.ToLower(parts[len(parts)-1]), parts[:len(parts)-1]
	if len(qual) == 0 && w.opaque {
		return false
	}
	found, isInt := 0, false
	for _, rv := range w.relations {
		switch len(qual) {
		case 1:
			if name := rv.GetRelname(); rv.GetAlias() != nil {
				if rv.GetAlias().GetAliasname() != qual[0] {
					continue
				}
			} else if name != qual[0] {
				continue
			}
		case 2:
			if rv.GetAlias() != nil || rv.GetSchemaname() != qual[0] || rv.GetRelname() != qual[1] {
				continue
			}
		}
		cols, ok := w.relationColumns(rv)
		if !ok {
			return false
		}
		if typ, has := cols[col]; has {
			found++
			isInt = typ
		}
	}
	return found == 1 && isInt
}

// relationColumns are rv's columns, true for an integer one; ok is false
// for a relation whose columns are not known.
func (w *treeWalk) relationColumns(rv *pg_query.RangeVar) (map[string]bool, bool) {
	if rv.GetCatalogname() != "" || len(rv.GetAlias().GetColnames()) > 0 || rv.GetSchemaname() == "" && w.ctes[rv.GetRelname()] {
		return nil, false
	}
	key := rv.GetSchemaname() + "." + rv.GetRelname()
	if cols, ok := w.described[key]; ok {
		return cols, cols != nil
	}
	cols, ok := w.columns(rv.GetSchemaname(), rv.GetRelname())
	if !ok {
		cols = nil
	}
	if w.described == nil {
		w.described = map[string]map[string]bool{}
	}
	w.described[key] = cols
	return cols, cols != nil
}

// paramRef gives $n PREPARE's type for it: $n::type.
func (w *treeWalk) paramRef(n *pg_query.Node, pr *pg_query.ParamRef) {
	if w.params == nil || w.typed[pr] || pr.GetNumber() < 1 || int(pr.GetNumber()) > len(w.params) {
		return
	}
	w.typed[pr] = true
	n.Node = &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg:      &pg_query.Node{Node: &pg_query.Node_ParamRef{ParamRef: pr}},
		TypeName: w.params[pr.GetNumber()-1].GetTypeName(),
		Location: -1,
	}}
}

func nonZero(d *pg_query.Node) *pg_query.Node {
	isZero := pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, []*pg_query.Node{pg_query.MakeStrNode("=")},
		d, pg_query.MakeAConstIntNode(0, -1), -1)
	raise := pg_query.MakeFuncCallNode([]*pg_query.Node{pg_query.MakeStrNode("error")},
		[]*pg_query.Node{pg_query.MakeAConstStrNode("division by zero", -1)}, -1)
	return &pg_query.Node{Node: &pg_query.Node_CaseExpr{CaseExpr: &pg_query.CaseExpr{
		Args:      []*pg_query.Node{{Node: &pg_query.Node_CaseWhen{CaseWhen: &pg_query.CaseWhen{Expr: isZero, Result: raise}}}},
		Defresult: d,
	}}}
}

// resultNames names the columns of a statement's target list as Postgres
// does.
func resultNames(stmt *pg_query.Node) []string {
	var targets []*pg_query.Node
	switch {
	case stmt.GetSelectStmt() != nil:
		sel := stmt.GetSelectStmt()
		for sel.GetOp() != pg_query.SetOperation_SETOP_NONE && sel.GetLarg() != nil {
			sel = sel.GetLarg()
		}
		if vals := sel.GetValuesLists(); len(vals) > 0 {
			n := len(vals[0].GetList().GetItems())
			names := make([]string, n)
			for i := range names {
				names[i] = "column" + strconv.Itoa(i+1)
			}
			return names
		}
		targets = sel.GetTargetList()
	case stmt.GetInsertStmt() != nil:
		targets = stmt.GetInsertStmt().GetReturningList()
	case stmt.GetUpdateStmt() != nil:
		targets = stmt.GetUpdateStmt().GetReturningList()
	case stmt.GetDeleteStmt() != nil:
		targets = stmt.GetDeleteStmt().GetReturningList()
	case stmt.GetPrepareStmt() != nil:
		// Kept for EXECUTE; PREPARE itself returns no rows.
		return resultNames(stmt.GetPrepareStmt().GetQuery())
	default:
		return nil
	}
	if len(targets) == 0 {
		return nil
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		rt := t.GetResTarget()
		switch {
		case rt == nil:
			return nil
		case rt.GetName() != "":
			names[i] = rt.GetName()
		case isStar(rt.GetVal()):
			names[i] = "*"
		default:
			names[i] = figureColname(rt.GetVal())
		}
	}
	return names
}

func isStar(n *pg_query.Node) bool {
	fields := n.GetColumnRef().GetFields()
	return len(fields) > 0 && fields[len(fields)-1].GetAStar() != nil
}

// figureColname is Postgres's FigureColname (parse_target.c).
func figureColname(n *pg_query.Node) string {
	name, strength := figure(n)
	if strength == 0 {
		return "?column?"
	}
	return name
}

func figure(n *pg_query.Node) (string, int) {
	if n == nil {
		return "", 0
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		fields := x.ColumnRef.GetFields()
		for i := len(fields) - 1; i >= 0; i-- {
			if s := fields[i].GetString_(); s != nil {
				return s.GetSval(), 2
			}
		}
	case *pg_query.Node_AIndirection:
		ind := x.AIndirection.GetIndirection()
		for i := len(ind) - 1; i >= 0; i-- {
			if s := ind[i].GetString_(); s != nil {
				return s.GetSval(), 2
			}
		}
		return figure(x.AIndirection.GetArg())
	case *pg_query.Node_FuncCall:
		fn := x.FuncCall.GetFuncname()
		if len(fn) > 0 {
			return fn[len(fn)-1].GetString_().GetSval(), 2
		}
	case *pg_query.Node_AExpr:
		if x.AExpr.GetKind() == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case *pg_query.Node_TypeCast:
		name, s := figure(x.TypeCast.GetArg())
		if s <= 1 {
			tn := x.TypeCast.GetTypeName().GetNames()
			if len(tn) > 0 {
				return tn[len(tn)-1].GetString_().GetSval(), 1
			}
		}
		return name, s
	case *pg_query.Node_CollateClause:
		return figure(x.CollateClause.GetArg())
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2
	case *pg_query.Node_SubLink:
		switch x.SubLink.GetSubLinkType() {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg_query.SubLinkType_EXPR_SUBLINK:
			if names := resultNames(x.SubLink.GetSubselect()); len(names) > 0 && names[0] != "*" {
				return names[0], 2
			}
		}
	case *pg_query.Node_CaseExpr:
		name, s := figure(x.CaseExpr.GetDefresult())
		if s <= 1 {
			return "case", 1
		}
		return name, s
	case *pg_query.Node_AArrayExpr:
		return "array", 2
	case *pg_query.Node_RowExpr:
		return "row", 2
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2
	case *pg_query.Node_MinMaxExpr:
		if x.MinMaxExpr.GetOp() == pg_query.MinMaxOp_IS_GREATEST {
			return "greatest", 2
		}
		return "least", 2
	case *pg_query.Node_SqlvalueFunction:
		switch x.SqlvalueFunction.GetOp() {
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
			return "current_date", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:
			return "current_time", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N:
			return "current_timestamp", 2
		case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:
			return "localtime", 2
		case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
			return "localtimestamp", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:
			return "current_role", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:
			return "current_user", 2
		case pg_query.SQLValueFunctionOp_SVFOP_USER:
			return "user", 2
		case pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:
			return "session_user", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:
			return "current_catalog", 2
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:
			return "current_schema", 2
		}
	case *pg_query.Node_XmlExpr:
		return "xml", 2
	}
	return "", 0
}

// applyNames puts the Postgres names over DuckDB's column names. A star
// keeps DuckDB's names for the columns it expands to; with more than one
// star, or a count that does not add up, DuckDB's names stay.
func applyNames(duck []string, names []string) []string {
	stars := 0
	for _, n := range names {
		if n == "*" {
			stars++
		}
	}
	if names == nil || stars > 1 || len(names)-stars > len(duck) || stars == 0 && len(names) != len(duck) {
		return duck
	}
	out := make([]string, 0, len(duck))
	expand := len(duck) - (len(names) - stars)
	for _, n := range names {
		if n == "*" {
			out = append(out, duck[len(out):len(out)+expand]...)
			continue
		}
		out = append(out, n)
	}
	return out
}

// deparse prints one statement node as SQL.
func deparse(stmt *pg_query.Node) (string, error) {
	return pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion(), Stmts: []*pg_query.RawStmt{{Stmt: stmt}}})
}

// parserVersion is the parse tree version the deparser checks for.
var parserVersion = sync.OnceValue(func() int32 {
	tree, _ := pg_query.Parse("SELECT")
	return tree.GetVersion()
})

// deparsedBuiltins are the pg_catalog types the deparser prints in SQL's
// own spelling (int, varchar(n), timestamp with time zone, ...); it prints
// any other as pg_catalog.name, which DuckDB does not know.
var deparsedBuiltins = map[string]bool{"bpchar": true, "varchar": true, "numeric": true, "bool": true,
	"int2": true, "int4": true, "int8": true, "float4": true, "float8": true, "time": true, "timetz": true,
	"timestamp": true, "timestamptz": true, "interval": true, "bit": true, "varbit": true}

// unqualifyType drops the pg_catalog qualifier the parser puts on types
// such as json, so that the deparsed text names them as DuckDB does.
func unqualifyType(tn *pg_query.TypeName) {
	names := tn.GetNames()
	if len(names) == 2 && names[0].GetString_().GetSval() == "pg_catalog" && !deparsedBuiltins[names[1].GetString_().GetSval()] {
		tn.Names = names[1:]
	}
}
