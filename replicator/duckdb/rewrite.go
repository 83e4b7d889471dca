package duckdb

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// catalogRewriter points a client statement's catalog references at the
// stand-in catalog (pgcatalog.go) and turns the Postgres spellings DuckDB
// cannot parse or bind into ones it can. It works on the parse tree from
// pg_query (the Postgres parser), in the same walk as the semantics
// rewrites (parsePostgres), never on the text.
//
//   - pg_catalog.X and information_schema.X relations, and unqualified
//     pg_X ones, become the stand-in's views; catalog functions
//     (pg_get_userbyid, format_type, ...) its macros, qualified or not.
//   - Casts to regclass, regtype, regnamespace, regproc and regrole look a
//     name up (a string constant) or keep the OID (anything else); an OID
//     cast on to text becomes the name. Casts to oid, name, "char" and
//     information_schema's domains become DuckDB types.
//   - OPERATOR(pg_catalog.op) becomes op; ~, ~*, !~ and !~* become
//     regexp_matches; COLLATE clauses go (DuckDB compares bytes, as C does).
//
// A statement that does not parse, or that needs none of this, is left as
// it is: DuckDB's own dialect reaches DuckDB unchanged.
type catalogRewriter struct {
	relations map[string]string // view name -> stand-in schema (pg or info)
	functions map[string]bool   // macro names in schema pg
}

// rewriteNeedles are what a statement must mention to be parsed at all.
var rewriteNeedles = []string{"pg_", "any", "all", "format", "current_setting", "json_build_object", "string_to_array", "information_schema", "reg", "operator", "collate", "quote_ident", "parse_ident",
	"array_lower", "array_upper", "array_length", "format_type", "has_", "_description", "::oid", "::name", "current_database"}

// regTypes are the reg* types and the macros that read and print them.
var regTypes = map[string]string{"regclass": "regclass", "regtype": "regtype", "regnamespace": "regnamespace",
	"regproc": "regproc", "regprocedure": "regproc", "regrole": "regrole"}

// plainTypes are Postgres types DuckDB does not have, and what stands in.
var plainTypes = map[string]string{"oid": "bigint", "name": "varchar", "char": "varchar", "pg_node_tree": "varchar",
	"sql_identifier": "varchar", "character_data": "varchar", "yes_or_no": "varchar", "cardinal_number": "integer",
	"int2vector": "varchar", "oidvector": "varchar", "xid": "bigint", "regoper": "bigint", "regconfig": "bigint", "aclitem": "varchar",
	"_aclitem": "varchar[]", "pg_lsn": "varchar", "anyarray": "varchar", "time_stamp": "timestamptz"}

// needsCatalog reports whether query mentions anything the catalog
// rewrites look at; a statement that does not is not walked for them.
func (r *catalogRewriter) needsCatalog(query string) bool {
	if r == nil {
		return false
	}
	lower := strings.ToLower(query)
	for _, n := range rewriteNeedles {
		if strings.Contains(lower, n) {
			return true
		}
	}
	return false
}

// treeWalk is the one pass over a statement's parse tree (parsePostgres):
// the catalog rewrites (when r is set) and the semantics rewrites
// (semantics.go) applied to the same tree.
type treeWalk struct {
	r       *catalogRewriter // nil: no catalog rewrites
	changed bool
	// params are PREPARE's parameter types; typed are the ParamRefs given
	// theirs.
	params []*pg_query.Node
	typed  map[*pg_query.ParamRef]bool
	// divisions are the statement's / (integerDivisions); guards the
	// divisors' zero checks, by what they check.
	divisions []*pg_query.A_Expr
	guards    map[*pg_query.CaseExpr]*pg_query.Node
	// relations are the statement's relations, by which integerColumn
	// finds a column's type (columns, nil for none; described caches it);
	// opaque is set when a FROM item is something else (a subquery, a
	// function), and ctes are the WITH queries' names.
	relations []*pg_query.RangeVar
	opaque    bool
	ctes      map[string]bool
	columns   columnTypes
	described map[string]map[string]bool
}

// message walks m depth-first: each node is rewritten before its children
// (node) and, for divisions, after them (after).
func (w *treeWalk) message(m protoreflect.Message) {
	var n *pg_query.Node
	switch x := m.Interface().(type) {
	case *pg_query.Node:
		n = x
		if !w.node(n) {
			return
		}
	case *pg_query.TypeName:
		unqualifyType(x)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.message(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			w.message(v.Message())
		}
		return true
	})
	if n != nil {
		w.after(n)
	}
}

// node rewrites n before its children are walked; false skips them.
func (w *treeWalk) node(n *pg_query.Node) bool {
	switch x := n.Node.(type) {
	case *pg_query.Node_ResTarget:
		resTarget(x.ResTarget)
	case *pg_query.Node_ParamRef:
		w.paramRef(n, x.ParamRef)
	}
	if w.r != nil {
		w.catalogNode(n)
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_RangeVar:
		w.relations = append(w.relations, x.RangeVar)
	case *pg_query.Node_RangeSubselect, *pg_query.Node_RangeFunction, *pg_query.Node_RangeTableFunc, *pg_query.Node_JsonTable:
		w.opaque = true
	case *pg_query.Node_CommonTableExpr:
		if w.ctes == nil {
			w.ctes = map[string]bool{}
		}
		w.ctes[x.CommonTableExpr.GetCtename()] = true
	}
	return true
}

func (w *treeWalk) catalogNode(n *pg_query.Node) {
	switch x := n.Node.(type) {
	case *pg_query.Node_RangeVar:
		w.rangeVar(x.RangeVar)
	case *pg_query.Node_FuncCall:
		if w.postgresFunction(n, x.FuncCall) {
			w.catalogNode(n)
			return
		}
		w.funcCall(x.FuncCall)
	case *pg_query.Node_TypeCast:
		w.typeCast(n, x.TypeCast)
	case *pg_query.Node_AExpr:
		w.aExpr(n, x.AExpr)
	case *pg_query.Node_RangeFunction:
		w.rangeFunction(n, x.RangeFunction)
	case *pg_query.Node_CollateClause:
		if x.CollateClause.Arg != nil {
			n.Node = x.CollateClause.Arg.Node
			w.changed = true
			w.catalogNode(n)
		}
	}
}

// resTarget names an unnamed output column the way Postgres would
// (FigureColname), so that a subquery's columns bind by Postgres's names
// and a rewritten expression is not named after the stand-in. The names
// only reach DuckDB if something in the statement is rewritten.
func resTarget(t *pg_query.ResTarget) {
	if t.Name != "" || t.Val == nil || t.Val.GetColumnRef() != nil {
		return
	}
	if name, strength := figure(t.Val); strength > 0 && name != "" {
		t.Name = name
	}
}

func (w *treeWalk) rangeVar(rv *pg_query.RangeVar) {
	if rv.Catalogname != "" {
		return
	}
	var schema string
	switch strings.ToLower(rv.Schemaname) {
	case "pg_catalog":
		if w.r.relations[rv.Relname] == "pg" {
			schema = "pg"
		}
	case "information_schema":
		if w.r.relations["info."+rv.Relname] == "info" {
			schema = "info"
		}
	case "":
		if strings.HasPrefix(rv.Relname, "pg_") && w.r.relations[rv.Relname] == "pg" {
			schema = "pg"
		}
	}
	if schema == "" {
		return
	}
	if rv.Alias == nil {
		// Column references qualified by the relation's name still bind.
		rv.Alias = &pg_query.Alias{Aliasname: rv.Relname}
	}
	rv.Catalogname, rv.Schemaname = catalogDatabase, schema
	w.changed = true
}

// functionName is the stand-in macro for a function name, or "".
func (r *catalogRewriter) functionName(names []*pg_query.Node) string {
	switch len(names) {
	case 1:
	case 2:
		s := strings.ToLower(names[0].GetString_().GetSval())
		if s != "pg_catalog" && s != "information_schema" {
			return ""
		}
	default:
		return ""
	}
	f := names[len(names)-1].GetString_().GetSval()
	if r.functions[f] {
		return f
	}
	return ""
}

func (w *treeWalk) funcCall(f *pg_query.FuncCall) {
	if name := w.r.functionName(f.Funcname); name != "" {
		f.Funcname = qualified(catalogDatabase, "pg", name)
		w.changed = true
		return
	}
	if len(f.Funcname) == 2 && strings.EqualFold(f.Funcname[0].GetString_().GetSval(), "pg_catalog") {
		f.Funcname = f.Funcname[1:]
		w.changed = true
	}
}

func qualified(parts ...string) []*pg_query.Node {
	out := make([]*pg_query.Node, len(parts))
	for i, p := range parts {
		out[i] = pg_query.MakeStrNode(p)
	}
	return out
}

// typeName is a cast's type, unqualified and lower case.
func typeName(t *pg_query.TypeName) (string, bool) {
	names := t.GetNames()
	if len(names) == 0 {
		return "", false
	}
	return strings.ToLower(names[len(names)-1].GetString_().GetSval()), len(t.ArrayBounds) > 0
}

func (w *treeWalk) typeCast(n *pg_query.Node, c *pg_query.TypeCast) {
	name, array := typeName(c.TypeName)
	if array {
		return
	}
	// oid::regclass::text and the like: the OID's name.
	if name == "text" || name == "varchar" || name == "name" {
		if in := c.Arg.GetTypeCast(); in != nil {
			if inner, _ := typeName(in.TypeName); regTypes[inner] != "" && in.Arg.GetAConst() == nil {
				n.Node = &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
					Funcname: qualified(catalogDatabase, "pg", regTypes[inner]+"_out"), Args: []*pg_query.Node{in.Arg}}}
				w.changed = true
				return
			}
		}
	}
	if reg := regTypes[name]; reg != "" {
		// A column is an OID column (c.oid::regclass); anything else may
		// be a name (format('%I.%I', ...)::regclass, $1::regclass), which
		// the macro looks up unless it is all digits.
		if c.Arg.GetColumnRef() != nil {
			c.TypeName = &pg_query.TypeName{Names: qualified("bigint"), Typemod: -1}
		} else {
			n.Node = &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
				Funcname: qualified(catalogDatabase, "pg", reg+"_in"), Args: []*pg_query.Node{c.Arg}}}
		}
		w.changed = true
		return
	}
	if plain, ok := plainTypes[name]; ok {
		c.TypeName = &pg_query.TypeName{Names: qualified(plain), Typemod: -1}
		w.changed = true
		return
	}
	if names := c.TypeName.GetNames(); len(names) == 2 && strings.EqualFold(names[0].GetString_().GetSval(), "pg_catalog") {
		c.TypeName.Names = names[1:]
		w.changed = true
	}
}

func (w *treeWalk) aExpr(n *pg_query.Node, e *pg_query.A_Expr) {
	if (e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY || e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ALL) && len(e.Name) > 0 {
		w.anyAll(n, e)
		return
	}
	if e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(e.Name) == 0 {
		return
	}
	if len(e.Name) == 2 && strings.EqualFold(e.Name[0].GetString_().GetSval(), "pg_catalog") {
		e.Name = e.Name[1:]
		w.changed = true
	}
	op := e.Name[len(e.Name)-1].GetString_().GetSval()
	var negate, icase bool
	switch op {
	case "~":
	case "~*":
		icase = true
	case "!~":
		negate = true
	case "!~*":
		negate, icase = true, true
	default:
		return
	}
	args := []*pg_query.Node{e.Lexpr, e.Rexpr}
	if icase {
		args = append(args, pg_query.MakeAConstStrNode("i", -1))
	}
	call := &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
		Funcname: qualified("regexp_matches"), Args: args}}}
	if negate {
		n.Node = &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{Boolop: pg_query.BoolExprType_NOT_EXPR, Args: []*pg_query.Node{call}}}
	} else {
		n.Node = call.Node
	}
	w.changed = true
}

// rangeFunction names the one column of generate_series(...) s or
// unnest(...) s after its alias: Postgres lets s stand for the value,
// DuckDB for the row.
//
// A scalar function in FROM (string_to_array(...) s), which Postgres reads
// as one row holding the value, becomes that one-row subquery: DuckDB
// looks for a table function of the name.
func (w *treeWalk) rangeFunction(n *pg_query.Node, rf *pg_query.RangeFunction) {
	if rf.Alias == nil || len(rf.Alias.Colnames) > 0 || len(rf.Functions) != 1 || rf.Ordinality || rf.Lateral {
		return
	}
	list := rf.Functions[0].GetList()
	if list == nil || len(list.Items) == 0 {
		return
	}
	f := list.Items[0].GetFuncCall()
	if f == nil || len(f.Funcname) == 0 {
		return
	}
	switch strings.ToLower(f.Funcname[len(f.Funcname)-1].GetString_().GetSval()) {
	case "generate_series", "unnest":
		rf.Alias.Colnames = []*pg_query.Node{pg_query.MakeStrNode(rf.Alias.Aliasname)}
		w.changed = true
	case "string_to_array", "current_schemas", "parse_ident", "regexp_split_to_array":
		sel := &pg_query.SelectStmt{TargetList: []*pg_query.Node{
			pg_query.MakeResTargetNodeWithNameAndVal(rf.Alias.Aliasname, list.Items[0], -1)}}
		n.Node = &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
			Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}, Alias: rf.Alias}}
		w.changed = true
	}
}

// anyAll turns x = ANY(array) into list_contains(array, x) and x <> ALL
// (array) into its negation: DuckDB plans ANY as a subquery, which it
// cannot put in an outer join's condition. A constant array ('{a,b}') and
// a subquery stay as they are.
func (w *treeWalk) anyAll(n *pg_query.Node, e *pg_query.A_Expr) {
	op := e.Name[len(e.Name)-1].GetString_().GetSval()
	if e.Rexpr == nil || e.Rexpr.GetAConst() != nil || e.Rexpr.GetSubLink() != nil {
		return
	}
	negate := false
	switch {
	case op == "=" && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY:
	case op == "<>" && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		negate = true
	default:
		return
	}
	call := &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
		Funcname: qualified("list_contains"), Args: []*pg_query.Node{e.Rexpr, e.Lexpr}}}}
	if negate {
		n.Node = &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{Boolop: pg_query.BoolExprType_NOT_EXPR, Args: []*pg_query.Node{call}}}
	} else {
		n.Node = call.Node
	}
	w.changed = true
}

// renamedFunctions are Postgres functions DuckDB has under another name.
var renamedFunctions = map[string]string{"json_build_object": "json_object", "jsonb_build_object": "json_object"}

// constantSettings are settings catalog queries read with
// current_setting() that DuckDB does not have, with pgcdc's values.
var constantSettings = map[string]string{"server_version_num": "160000", "server_version": "16.0", "max_index_keys": "32",
	"max_identifier_length": "63", "standard_conforming_strings": "on", "integer_datetimes": "on"}

// postgresFunction rewrites calls DuckDB spells differently. It reports
// whether it replaced n.
func (w *treeWalk) postgresFunction(n *pg_query.Node, f *pg_query.FuncCall) bool {
	if len(f.Funcname) != 1 {
		return false
	}
	name := strings.ToLower(f.Funcname[0].GetString_().GetSval())
	if to, ok := renamedFunctions[name]; ok {
		f.Funcname = qualified(to)
		w.changed = true
		return false
	}
	switch name {
	case "current_setting":
		if len(f.Args) == 1 && f.Args[0].GetAConst() != nil {
			if v, ok := constantSettings[strings.ToLower(f.Args[0].GetAConst().GetSval().GetSval())]; ok {
				n.Node = pg_query.MakeAConstStrNode(v, -1).Node
				w.changed = true
				return true
			}
		}
	case "format":
		if len(f.Args) == 0 || f.Args[0].GetAConst() == nil || f.Args[0].GetAConst().GetSval() == nil {
			return false
		}
		if parts, ok := formatParts(f.Args[0].GetAConst().GetSval().GetSval(), f.Args[1:]); ok {
			n.Node = &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{Funcname: qualified("concat"), Args: parts}}
			w.changed = true
			return true
		}
	}
	return false
}

// formatParts spells format()'s %s, %I, %L and %% as the arguments of a
// concat(): DuckDB's format() takes {} placeholders. Widths, positions
// and the like are left to fail.
func formatParts(format string, args []*pg_query.Node) ([]*pg_query.Node, bool) {
	var parts []*pg_query.Node
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, pg_query.MakeAConstStrNode(lit.String(), -1))
			lit.Reset()
		}
	}
	next := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			continue
		}
		if i+1 >= len(format) {
			return nil, false
		}
		i++
		switch format[i] {
		case '%':
			lit.WriteByte('%')
			continue
		case 's', 'I', 'L':
		default:
			return nil, false
		}
		if next >= len(args) {
			return nil, false
		}
		flush()
		arg := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: args[next],
			TypeName: &pg_query.TypeName{Names: qualified("varchar"), Typemod: -1}}}}
		switch format[i] {
		case 'I':
			arg = &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
				Funcname: qualified(catalogDatabase, "pg", "quote_ident"), Args: []*pg_query.Node{arg}}}}
		case 'L':
			arg = &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
				Funcname: qualified(catalogDatabase, "pg", "quote_nullable"), Args: []*pg_query.Node{arg}}}}
		}
		parts = append(parts, arg)
		next++
	}
	flush()
	if len(parts) == 0 {
		parts = append(parts, pg_query.MakeAConstStrNode("", -1))
	}
	return parts, true
}
