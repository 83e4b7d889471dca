package sql

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CallForm is how a call was written, which decides the shape of its result.
type CallForm int

const (
	// FormScalar is SELECT f(...): one column, named after the function or
	// its alias, holding each result row as a record.
	FormScalar CallForm = iota + 1
	// FormTable is SELECT * FROM f(...) or SELECT col, ... FROM f(...): the
	// selected result columns.
	FormTable
)

// String names the form for logs and test output.
func (f CallForm) String() string {
	switch f {
	case FormScalar:
		return "scalar"
	case FormTable:
		return "table"
	}
	return "invalid"
}

// OutputColumn is one column of what the client receives.
type OutputColumn struct {
	// Name is the column name the client sees, aliases applied.
	Name string
	Type Type
	// Index is the Function.Result column shown here, or -1 for the
	// FormScalar column that carries the whole row as a record.
	Index int
}

// Call is a statement that calls one of our functions. It is immutable and
// can be bound any number of times, concurrently.
type Call struct {
	Function *Function
	Form     CallForm
	// Columns are the output columns, in order.
	Columns []OutputColumn

	args      []*expr // by parameter; nil takes the default
	paramOIDs []uint32
}

// Classify decides whether one statement is a call of our functions. It
// returns (nil, nil) for everything that should pass through to the
// destination, a Call for SELECT f(...), SELECT * FROM f(...) and SELECT
// col, ... FROM f(...), and a *pgconn.PgError for a call we recognise but
// cannot run: another shape, bad arguments, non-constant arguments.
//
// A function name is ours unqualified or qualified with Schema; a call
// qualified with another schema is the destination's. Text the Postgres
// parser rejects passes through too, so the destination's dialect (DuckDB's
// FROM-first SELECT, PIVOT, ...) keeps working and reports its own errors.
func (c *Catalog) Classify(query string) (*Call, error) {
	if !c.mentionsFunction(query) {
		return nil, nil
	}
	call, _, err := c.classify(query)
	if err != nil {
		return nil, err
	}
	return call, nil
}

// classify is Classify; wrongShape says that the error is only that the
// statement is not one of the simple shapes.
func (c *Catalog) classify(query string) (call *Call, wrongShape bool, perr *pgconn.PgError) {
	if strings.IndexByte(query, 0) >= 0 {
		// The parser reads a C string and would silently stop at the NUL.
		return nil, false, nulError()
	}
	tree, err := pg_query.Parse(query)
	if err != nil {
		return nil, false, nil
	}
	stmts := tree.GetStmts()
	var first *Function
	for _, s := range stmts {
		if first = c.findCall(s.ProtoReflect()); first != nil {
			break
		}
	}
	if first == nil {
		return nil, false, nil
	}
	if len(stmts) != 1 {
		return nil, false, newError(codeSyntaxError, "pgcdc: %s() must be the only statement in its query string", first.Name)
	}
	call, fc, perr := c.shape(stmts[0].GetStmt().GetSelectStmt())
	if perr != nil {
		return nil, false, perr
	}
	if call == nil {
		return nil, true, shapeError(first)
	}
	if perr := call.compileArgs(fc.GetArgs()); perr != nil {
		return nil, false, perr
	}
	return call, false, nil
}

// ours is the function fc calls when that is one of ours.
func (c *Catalog) ours(fc *pg_query.FuncCall) *Function {
	names := fc.GetFuncname()
	switch len(names) {
	case 1:
		return c.Lookup(names[0].GetString_().GetSval())
	case 2:
		if equalFoldASCII(names[0].GetString_().GetSval(), Schema) {
			return c.Lookup(names[1].GetString_().GetSval())
		}
	}
	return nil
}

// findCall returns the first of our functions called anywhere in the tree.
// It walks generically so that no statement type can hide a call: CTEs,
// subqueries, INSERT ... SELECT, EXPLAIN, CALL.
func (c *Catalog) findCall(m protoreflect.Message) *Function {
	if fc, ok := m.Interface().(*pg_query.FuncCall); ok {
		if fn := c.ours(fc); fn != nil {
			return fn
		}
	}
	var found *Function
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && found == nil; i++ {
				found = c.findCall(l.Get(i).Message())
			}
		} else {
			found = c.findCall(v.Message())
		}
		return found == nil
	})
	return found
}

// shape matches the accepted statement shapes. It returns a nil Call when
// the statement has another shape; an error means the shape is right but a
// column reference is not.
func (c *Catalog) shape(sel *pg_query.SelectStmt) (*Call, *pg_query.FuncCall, *pgconn.PgError) {
	if sel == nil || !plainSelect(sel) {
		return nil, nil, nil
	}
	targets := sel.GetTargetList()
	if len(sel.GetFromClause()) == 0 {
		if len(targets) != 1 {
			return nil, nil, nil
		}
		rt := targets[0].GetResTarget()
		fc := rt.GetVal().GetFuncCall()
		fn := c.plainCall(fc)
		if fn == nil {
			return nil, nil, nil
		}
		name := rt.GetName()
		if name == "" {
			name = fn.Name
		}
		return &Call{
			Function: fn,
			Form:     FormScalar,
			Columns:  []OutputColumn{{Name: name, Type: typeRecord, Index: -1}},
		}, fc, nil
	}
	if len(sel.GetFromClause()) != 1 {
		return nil, nil, nil
	}
	rf := sel.GetFromClause()[0].GetRangeFunction()
	if rf == nil || rf.GetLateral() || rf.GetOrdinality() || rf.GetIsRowsfrom() ||
		len(rf.GetColdeflist()) > 0 || len(rf.GetFunctions()) != 1 {
		return nil, nil, nil
	}
	items := rf.GetFunctions()[0].GetList().GetItems()
	if len(items) == 0 || len(items[1:]) > 0 && len(items[1].GetList().GetItems()) > 0 {
		return nil, nil, nil // a column definition list: f(...) AS (a int)
	}
	fc := items[0].GetFuncCall()
	fn := c.plainCall(fc)
	if fn == nil {
		return nil, nil, nil
	}
	// The columns as the FROM item exposes them: AS r(a, b) renames the
	// leading ones, and the item is named after the function when unaliased.
	avail := make([]OutputColumn, len(fn.Result))
	for i, rc := range fn.Result {
		avail[i] = OutputColumn{Name: rc.Name, Type: rc.Type, Index: i}
	}
	rel := fc.GetFuncname()[len(fc.GetFuncname())-1].GetString_().GetSval()
	if a := rf.GetAlias(); a != nil {
		rel = a.GetAliasname()
		if len(a.GetColnames()) > len(avail) {
			return nil, nil, newError(codeInvalidColumnReference,
				"table %q has %d columns available but %d columns specified", rel, len(avail), len(a.GetColnames()))
		}
		for i, n := range a.GetColnames() {
			avail[i].Name = n.GetString_().GetSval()
		}
	}
	call := &Call{Function: fn, Form: FormTable, Columns: []OutputColumn{}}
	for _, t := range targets {
		rt := t.GetResTarget()
		cols, ok, perr := resolveTarget(rt, rel, avail)
		if perr != nil {
			return nil, nil, perr
		}
		if !ok {
			return nil, nil, nil
		}
		call.Columns = append(call.Columns, cols...)
	}
	return call, fc, nil
}

// plainSelect reports a SELECT with nothing but a target list and FROM:
// anything else (WHERE, ORDER BY, INTO, WITH, UNION, ...) would need a query
// engine around the call.
func plainSelect(sel *pg_query.SelectStmt) bool {
	return len(sel.GetDistinctClause()) == 0 && sel.GetIntoClause() == nil &&
		sel.GetWhereClause() == nil && len(sel.GetGroupClause()) == 0 && !sel.GetGroupDistinct() &&
		sel.GetHavingClause() == nil && len(sel.GetWindowClause()) == 0 &&
		len(sel.GetValuesLists()) == 0 && len(sel.GetSortClause()) == 0 &&
		sel.GetLimitOffset() == nil && sel.GetLimitCount() == nil &&
		len(sel.GetLockingClause()) == 0 && sel.GetWithClause() == nil &&
		sel.GetLarg() == nil && sel.GetRarg() == nil &&
		(sel.GetOp() == pg_query.SetOperation_SETOP_NONE || sel.GetOp() == pg_query.SetOperation_SET_OPERATION_UNDEFINED)
}

// plainCall is the function fc calls when it is ours and written as a plain
// call, without aggregate or window decorations.
func (c *Catalog) plainCall(fc *pg_query.FuncCall) *Function {
	if fc == nil || len(fc.GetAggOrder()) > 0 || fc.GetAggFilter() != nil || fc.GetOver() != nil ||
		fc.GetAggWithinGroup() || fc.GetAggStar() || fc.GetAggDistinct() || fc.GetFuncVariadic() {
		return nil
	}
	return c.ours(fc)
}

// resolveTarget resolves one SELECT list item against the columns of the
// FROM item named rel. ok is false when the item is not a plain column
// reference or star.
func resolveTarget(rt *pg_query.ResTarget, rel string, avail []OutputColumn) ([]OutputColumn, bool, *pgconn.PgError) {
	ref := rt.GetVal().GetColumnRef()
	if ref == nil || len(ref.GetFields()) == 0 || len(ref.GetFields()) > 2 || len(rt.GetIndirection()) > 0 {
		return nil, false, nil
	}
	fields := ref.GetFields()
	if len(fields) == 2 {
		q := fields[0].GetString_()
		if q == nil {
			return nil, false, nil
		}
		if q.GetSval() != rel {
			return nil, false, newError(codeUndefinedTable, "missing FROM-clause entry for table %q", q.GetSval())
		}
	}
	last := fields[len(fields)-1]
	if last.GetAStar() != nil {
		if rt.GetName() != "" {
			return nil, false, nil
		}
		return append([]OutputColumn(nil), avail...), true, nil
	}
	if last.GetString_() == nil {
		return nil, false, nil
	}
	name := last.GetString_().GetSval()
	for _, col := range avail {
		if col.Name == name {
			if rt.GetName() != "" {
				col.Name = rt.GetName()
			}
			return []OutputColumn{col}, true, nil
		}
	}
	e := newError(codeUndefinedColumn, "column %q does not exist", name)
	names := make([]string, len(avail))
	for i, col := range avail {
		names[i] = col.Name
	}
	e.Hint = "The columns are " + strings.Join(names, ", ") + "."
	return nil, false, e
}
