package duckdb

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	pgsql "github.com/pgcdc/pgcdc/sql"
)

// stmtKind classifies what a statement does to the transaction and how its
// result is reported.
type stmtKind int

const (
	kindRows stmtKind = iota
	kindCount
	kindBegin
	kindCommit
	kindRollback
	kindOther
	kindDeclare // DECLARE ... CURSOR
	kindFetch   // FETCH and MOVE
	kindClose   // CLOSE
)

type prepared struct {
	s      *session
	query  string // for transaction statements, what DuckDB runs
	kind   stmtKind
	tag    string // command tag verb(s), e.g. "INSERT", "CREATE TABLE"
	fields []pgsql.Field
	types  []*resultType
	params []uint32
	// names are the Postgres result column names (see resultNames).
	names []string
	// modes are a BEGIN's isolation level and access mode.
	modes pgsql.TransactionModes
	// cursor statements: the cursor's name, DECLARE's query and WITH HOLD,
	// FETCH's count (-1: ALL) and whether it is a MOVE.
	cursor string
	inner  *prepared
	hold   bool
	count  int64
	move   bool
	// PREPARE's and DEALLOCATE's statement name; deallocAll for DEALLOCATE
	// ALL.
	prepName, deallocName string
	deallocAll            bool
}

// Prepare implements pgsql.Session. It describes the statement with
// DuckDB's prepared-statement API, then releases it; Query prepares the
// text again. That keeps no DuckDB statement alive per client statement,
// which simple-query clients never close.
func (s *session) Prepare(ctx context.Context, query string) (pgsql.Prepared, error) {
	if pgsql.IsCopy(query) {
		// COPY to or from the client runs in the COPY sub-protocol (copy.go).
		if c, ok, err := pgsql.ParseCopy(query); err != nil {
			s.Abort()
			return nil, err
		} else if ok {
			return s.prepareCopy(ctx, c)
		}
	}
	p := &prepared{s: s, query: query, tag: commandTag(query)}
	switch p.tag {
	case "BEGIN", "START TRANSACTION", "COMMIT", "END", "ROLLBACK", "ABORT":
		if ok, err := p.prepareTransaction(); err != nil {
			s.Abort()
			return nil, err
		} else if ok {
			return p, nil
		}
	}
	if s.failed {
		return nil, errAborted
	}
	pg := parsePostgres(query, s.d.catalog, s.columnTypes)
	p.query, p.names = pg.run, pg.names
	if ps := pg.stmt.GetPrepareStmt(); ps != nil {
		p.prepName = ps.GetName()
	}
	if es := pg.stmt.GetExecuteStmt(); es != nil {
		names, ok := s.prepared[es.GetName()]
		if !ok {
			s.Abort()
			return nil, errNoPrepared(es.GetName())
		}
		p.names = names
	}
	if ds := pg.stmt.GetDeallocateStmt(); ds != nil {
		if ds.GetIsall() {
			p.deallocAll, p.tag = true, "DEALLOCATE ALL"
			return p, nil
		}
		p.deallocName = ds.GetName()
	}
	if ok, err := p.prepareCursor(ctx, pg.stmt); ok || err != nil {
		if err != nil {
			s.Abort()
			return nil, err
		}
		return p, nil
	}
	st, typ, err := s.prepare(p.query)
	if err != nil {
		s.Abort()
		return nil, err
	}
	defer st.Close()
	if err := p.describe(st, typ); err != nil {
		s.Abort()
		return nil, translate(err)
	}
	return p, nil
}

// prepareTransaction recognises transaction control. DuckDB runs it when
// DuckDB parses it; the Postgres forms it does not (BEGIN ISOLATION LEVEL
// ..., START TRANSACTION READ ONLY) run as DuckDB's plain equivalent:
// DuckDB has one isolation level, snapshot isolation, at least as strict as
// any a client asks for. ok is false for a statement that is not one.
func (p *prepared) prepareTransaction() (ok bool, err error) {
	kind, tag := kindRollback, "ROLLBACK"
	switch p.tag {
	case "BEGIN", "START TRANSACTION":
		kind, tag = kindBegin, "BEGIN"
		p.modes = pgsql.BeginModes(p.query)
		if err := checkIsolation(p.modes.Isolation); err != nil {
			return false, err
		}
	case "COMMIT", "END":
		kind, tag = kindCommit, "COMMIT"
	}
	st, typ, perr := p.s.prepareOne(p.query)
	if perr == nil {
		st.Close()
		if typ != duckdb.STATEMENT_TYPE_TRANSACTION {
			return false, nil
		}
		p.kind, p.tag = kind, tag
		return true, nil
	}
	cmd, readOnly, ok := pgsql.TransactionCommand(p.query)
	if !ok {
		return false, perr
	}
	p.kind, p.tag = kind, tag
	switch cmd {
	case pgsql.TxBegin:
		p.query = "BEGIN TRANSACTION"
		if readOnly {
			p.query = "BEGIN TRANSACTION READ ONLY"
		}
	case pgsql.TxCommit:
		p.query = "COMMIT"
	default:
		p.query = "ROLLBACK"
	}
	return true, nil
}

// describe fills in what the statement takes and returns.
func (p *prepared) describe(ds *duckdb.Stmt, typ duckdb.StmtType) error {
	n, err := ds.ColumnCount()
	if err != nil {
		return err
	}
	duckNames := make([]string, n)
	for i := range duckNames {
		duckNames[i], _ = ds.ColumnName(i)
	}
	names := applyNames(duckNames, p.names)
	for i := 0; i < n; i++ {
		info, err := ds.ColumnTypeInfo(i)
		if err != nil {
			return err
		}
		rt := newResultType(info)
		p.fields = append(p.fields, pgsql.Field{Name: names[i], OID: rt.oid, Size: rt.size, TypeMod: rt.typmod})
		p.types = append(p.types, rt)
	}
	for i := 1; i <= ds.NumInput(); i++ {
		t, err := ds.ParamType(i)
		if err != nil || t == duckdb.TYPE_INVALID || t == duckdb.TYPE_ANY {
			p.params = append(p.params, 0)
			continue
		}
		oid, _ := pgTypeOf(t)
		p.params = append(p.params, oid)
	}
	switch typ {
	case duckdb.STATEMENT_TYPE_SELECT, duckdb.STATEMENT_TYPE_EXPLAIN, duckdb.STATEMENT_TYPE_CALL, duckdb.STATEMENT_TYPE_EXECUTE:
		p.kind = kindRows
		switch p.tag {
		case "SHOW", "EXPLAIN", "VALUES", "TABLE", "WITH", "DESCRIBE", "EXECUTE":
		default:
			p.tag = "SELECT"
		}
	case duckdb.STATEMENT_TYPE_INSERT, duckdb.STATEMENT_TYPE_UPDATE, duckdb.STATEMENT_TYPE_DELETE, stmtMergeInto:
		p.kind = kindRows // with RETURNING
		if n == 1 && duckNames[0] == "Count" {
			p.kind, p.fields = kindCount, nil
		}
	default:
		p.kind, p.fields = kindOther, nil
	}
	return nil
}

func (p *prepared) ParamOIDs() []uint32   { return p.params }
func (p *prepared) Fields() []pgsql.Field { return p.fields }
func (p *prepared) Close() error          { return nil }

// transaction runs BEGIN, COMMIT or ROLLBACK. Where Postgres only warns
// (BEGIN inside a block, COMMIT outside one) nothing reaches DuckDB, which
// would fail instead. Whether a block is open afterwards is DuckDB's to say.
func (p *prepared) transaction(ctx context.Context) (pgsql.Rows, error) {
	s := p.s
	switch p.kind {
	case kindBegin:
		if s.failed {
			return nil, errAborted
		}
		if s.inTx {
			return &tagRows{tag: p.tag}, nil
		}
	default:
		if s.failed {
			// DuckDB's side was rolled back when the block failed;
			// Postgres reports ROLLBACK for a failed block's COMMIT.
			s.failed = false
			return &tagRows{tag: "ROLLBACK"}, nil
		}
		if !s.inTx {
			return &tagRows{tag: p.tag}, nil
		}
	}
	q := p.query
	readOnly := s.readOnlyDefault
	if p.modes.ReadOnly != nil {
		readOnly = *p.modes.ReadOnly
	}
	if p.kind == kindBegin && readOnly {
		q = "BEGIN TRANSACTION READ ONLY"
	}
	if err := s.exec(ctx, q); err != nil {
		return nil, s.fail(err, p.kind != kindBegin)
	}
	if p.kind != kindBegin {
		s.closeCursors(false)
	}
	if p.kind == kindBegin {
		s.txReadOnly = readOnly
		// DuckDB took the BEGIN. It is not asked: any query would start
		// the transaction's snapshot now rather than at the client's first
		// statement, and a client that calls replicate() first in its
		// block expects to see what the call wrote.
		s.inTx = true
	} else {
		s.syncTx()
	}
	return &tagRows{tag: p.tag}, nil
}

// Query implements pgsql.Prepared.
func (p *prepared) Query(ctx context.Context, args []any) (_ pgsql.Rows, err error) {
	switch p.kind {
	case kindBegin, kindCommit, kindRollback:
		return p.transaction(ctx)
	case kindDeclare, kindFetch, kindClose:
		if p.s.failed {
			return nil, errAborted
		}
		rows, err := p.cursorStatement(ctx, args)
		if err != nil {
			p.s.Abort()
		}
		return rows, err
	}
	s := p.s
	if s.failed {
		return nil, errAborted
	}
	if err := p.checkPreparedName(ctx); err != nil || p.deallocAll {
		if err != nil {
			s.Abort()
			return nil, err
		}
		return &tagRows{tag: p.tag}, nil
	}
	st, typ, err := s.prepare(p.query)
	if err != nil {
		s.Abort()
		return nil, err
	}
	if s.readOnly() && writes(typ) {
		st.Close()
		s.Abort()
		return nil, &pgconn.PgError{Severity: "ERROR", Code: "25006",
			Message: fmt.Sprintf("cannot execute %s in a read-only transaction", p.tag)}
	}
	named, err := s.namedArgs(args)
	if err != nil {
		st.Close()
		s.Abort()
		return nil, translate(err)
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		parent := ctx
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
		defer func() {
			if err != nil && ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
				err = errStatementTimeout
			}
		}()
	}
	setting := typ == duckdb.STATEMENT_TYPE_SET || typ == duckdb.STATEMENT_TYPE_VARIABLE_SET
	var before string
	if setting {
		if before, err = s.searchPath(ctx); err != nil {
			st.Close()
			return nil, s.fail(err, false)
		}
	}
	rows, err := st.QueryContext(ctx, named)
	if err != nil {
		st.Close()
		return nil, s.fail(err, false)
	}
	if p.kind == kindRows {
		r := &resultRows{p: p, st: st, rows: rows, vals: make([]driver.Value, len(rows.Columns()))}
		s.results[r] = struct{}{}
		return r, nil
	}
	// Whatever DuckDB returns for the others is drained: a count, or
	// nothing a Postgres client expects.
	var n int64
	vals := make([]driver.Value, len(rows.Columns()))
	for {
		err = rows.Next(vals)
		if err != nil {
			break
		}
		if c, ok := vals[0].(int64); ok && len(vals) == 1 {
			n = c
		}
	}
	rows.Close()
	st.Close()
	if !errors.Is(err, io.EOF) {
		return nil, s.fail(err, false)
	}
	if setting {
		if err := s.guardSearchPath(ctx, before); err != nil {
			s.Abort()
			return nil, err
		}
	}
	switch {
	case p.prepName != "":
		s.prepared[p.prepName] = p.names
	case p.deallocName != "":
		delete(s.prepared, p.deallocName)
	}
	switch {
	case p.kind == kindOther:
		return &tagRows{tag: p.tag}, nil
	case p.tag == "INSERT":
		return &tagRows{tag: fmt.Sprintf("INSERT 0 %d", n)}, nil
	}
	return &tagRows{tag: fmt.Sprintf("%s %d", p.tag, n)}, nil
}

// namedArgs converts parameter values the way database/sql would for the
// driver: the driver's own check first, then the default conversion.
func (s *session) namedArgs(args []any) ([]driver.NamedValue, error) {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv := driver.NamedValue{Ordinal: i + 1, Value: a}
		if err := s.conn.CheckNamedValue(&nv); err != nil {
			if !errors.Is(err, driver.ErrSkip) {
				return nil, err
			}
			v, err := driver.DefaultParameterConverter.ConvertValue(a)
			if err != nil {
				return nil, fmt.Errorf("parameter $%d: %w", i+1, err)
			}
			nv.Value = v
		}
		out[i] = nv
	}
	return out, nil
}

type tagRows struct{ tag string }

func (t *tagRows) Next(context.Context) ([]any, error) { return nil, io.EOF }
func (t *tagRows) Tag() string                         { return t.tag }
func (t *tagRows) Close() error                        { return nil }

// resultRows is a cursor over a statement's rows; it holds the DuckDB
// statement until it is closed.
type resultRows struct {
	p      *prepared
	st     *duckdb.Stmt
	rows   driver.Rows
	vals   []driver.Value
	n      int64
	done   bool
	closed bool
}

func (r *resultRows) Next(ctx context.Context) ([]any, error) {
	if r.done || r.closed {
		return nil, io.EOF
	}
	if err := r.rows.Next(r.vals); err != nil {
		r.done = true
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		r.Close()
		return nil, r.p.s.fail(err, false)
	}
	out := make([]any, len(r.vals))
	for i, v := range r.vals {
		if b, ok := v.([]byte); ok {
			v = bytes.Clone(b)
		}
		pv, err := r.p.types[i].value(v, r.p.s.loc)
		if err != nil {
			r.done = true
			r.Close()
			return nil, r.p.s.fail(err, false)
		}
		out[i] = pv
	}
	r.n++
	return out, nil
}

func (r *resultRows) Tag() string {
	switch r.p.tag {
	case "INSERT":
		return fmt.Sprintf("INSERT 0 %d", r.n)
	case "SHOW", "EXPLAIN", "DESCRIBE":
		return r.p.tag
	case "UPDATE", "DELETE", "MERGE":
		return fmt.Sprintf("%s %d", r.p.tag, r.n)
	}
	return fmt.Sprintf("SELECT %d", r.n)
}

func (r *resultRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	delete(r.p.s.results, r)
	err := r.rows.Close()
	r.st.Close()
	return err
}

// commandTag derives the command tag from the statement text, as Postgres
// does: "CREATE TABLE", "DROP SCHEMA", "SET", "INSERT", ...
func commandTag(q string) string {
	words := leadingWords(q, 8)
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case "CREATE", "DROP", "ALTER":
		for _, w := range words[1:] {
			switch w {
			case "OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "IF", "NOT", "EXISTS", "PERSISTENT":
				continue
			}
			return words[0] + " " + w
		}
	case "START":
		return "START TRANSACTION"
	}
	return strings.TrimRight(words[0], ";")
}

// errStatementTimeout is Postgres's error when statement_timeout passes.
var errStatementTimeout = &pgconn.PgError{Severity: "ERROR", Code: "57014",
	Message: "canceling statement due to statement timeout"}

// checkIsolation refuses SERIALIZABLE: DuckDB's snapshot isolation is
// Postgres's REPEATABLE READ, which lets through anomalies (write skew)
// that SERIALIZABLE promises to prevent. Postgres refuses it the same way
// where it cannot provide it (on a hot standby). Weaker levels run as
// snapshot isolation, which gives at least what they promise.
func checkIsolation(level string) error {
	if strings.EqualFold(strings.TrimSpace(level), "serializable") {
		return &pgconn.PgError{Severity: "ERROR", Code: "0A000",
			Message: "cannot use serializable mode: the DuckDB replica provides snapshot isolation (REPEATABLE READ)",
			Hint:    "Use REPEATABLE READ or READ COMMITTED, which run as snapshot isolation."}
	}
	return nil
}

// writes reports whether a statement of DuckDB type typ may change the
// database, which a read-only transaction refuses.
func writes(typ duckdb.StmtType) bool {
	switch typ {
	case duckdb.STATEMENT_TYPE_SELECT, duckdb.STATEMENT_TYPE_EXPLAIN, duckdb.STATEMENT_TYPE_SET,
		duckdb.STATEMENT_TYPE_VARIABLE_SET, duckdb.STATEMENT_TYPE_TRANSACTION, duckdb.STATEMENT_TYPE_PREPARE,
		duckdb.STATEMENT_TYPE_RELATION, duckdb.STATEMENT_TYPE_PRAGMA, duckdb.STATEMENT_TYPE_EXECUTE:
		// EXECUTE is judged by DuckDB, whose block is read-only too.
		return false
	}
	return true
}

// Cursors. DECLARE runs its query at once and keeps the result, which
// DuckDB has materialised, for FETCH to read from: DuckDB has no cursors
// of its own, and a result stays readable while the session runs other
// statements. Cursors move forward only (NO SCROLL), as Postgres's do by
// default for most plans. A cursor without WITH HOLD ends with its
// transaction block; DECLARE without HOLD outside a block is refused, as
// in Postgres.

// cursor is one open cursor.
type cursor struct {
	rows   *resultRows
	fields []pgsql.Field
	hold   bool
}

// cursorOptHold is Postgres's CURSOR_OPT_HOLD.
const cursorOptHold = 0x0020

// prepareCursor recognises DECLARE, FETCH, MOVE and CLOSE.
func (p *prepared) prepareCursor(ctx context.Context, stmt *pg_query.Node) (bool, error) {
	s := p.s
	switch {
	case stmt.GetDeclareCursorStmt() != nil:
		dc := stmt.GetDeclareCursorStmt()
		text, err := deparse(dc.GetQuery())
		if err != nil {
			return true, &pgconn.PgError{Severity: "ERROR", Code: "42601", Message: "cannot read the cursor's query: " + err.Error()}
		}
		inner, err := s.Prepare(ctx, text)
		if err != nil {
			return true, err
		}
		p.kind, p.tag, p.cursor, p.hold = kindDeclare, "DECLARE CURSOR", dc.GetPortalname(), dc.GetOptions()&cursorOptHold != 0
		p.inner = inner.(*prepared)
		p.params = p.inner.params
		if p.inner.kind != kindRows {
			return true, &pgconn.PgError{Severity: "ERROR", Code: "42601", Message: "DECLARE CURSOR must be a SELECT or VALUES"}
		}
		return true, nil
	case stmt.GetFetchStmt() != nil:
		fs := stmt.GetFetchStmt()
		c := s.cursors[fs.GetPortalname()]
		if c == nil {
			return true, errNoCursor(fs.GetPortalname())
		}
		if fs.GetDirection() != pg_query.FetchDirection_FETCH_FORWARD || fs.GetHowMany() < 0 {
			return true, &pgconn.PgError{Severity: "ERROR", Code: "55000", Message: "cursor can only scan forward",
				Hint: "pgcdc's cursors over the DuckDB replica move forward only: FETCH [FORWARD] n, NEXT or ALL."}
		}
		p.kind, p.cursor, p.count, p.move = kindFetch, fs.GetPortalname(), fs.GetHowMany(), fs.GetIsmove()
		if p.count == math.MaxInt64 {
			p.count = -1
		}
		p.tag = "FETCH"
		if p.move {
			p.tag = "MOVE"
		} else {
			p.fields = c.fields
		}
		return true, nil
	case stmt.GetClosePortalStmt() != nil:
		name := stmt.GetClosePortalStmt().GetPortalname()
		if name != "" && s.cursors[name] == nil {
			return true, errNoCursor(name)
		}
		p.kind, p.tag, p.cursor = kindClose, "CLOSE CURSOR", name
		return true, nil
	}
	return false, nil
}

func errNoCursor(name string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: "34000", Message: fmt.Sprintf("cursor \"%s\" does not exist", name)}
}

func (p *prepared) cursorStatement(ctx context.Context, args []any) (pgsql.Rows, error) {
	s := p.s
	switch p.kind {
	case kindDeclare:
		if !p.hold && !s.inTx {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: "25P01", Message: "DECLARE CURSOR can only be used in transaction blocks"}
		}
		if s.cursors[p.cursor] != nil {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: "42P03", Message: fmt.Sprintf("cursor \"%s\" already exists", p.cursor)}
		}
		rows, err := p.inner.Query(ctx, args)
		if err != nil {
			return nil, err
		}
		r, ok := rows.(*resultRows)
		if !ok {
			rows.Close()
			return nil, &pgconn.PgError{Severity: "ERROR", Code: "42601", Message: "DECLARE CURSOR must be a SELECT or VALUES"}
		}
		s.cursors[p.cursor] = &cursor{rows: r, fields: p.inner.fields, hold: p.hold}
		return &tagRows{tag: p.tag}, nil
	case kindClose:
		if p.cursor == "" {
			for name, c := range s.cursors {
				c.rows.Close()
				delete(s.cursors, name)
			}
		} else if c := s.cursors[p.cursor]; c != nil {
			c.rows.Close()
			delete(s.cursors, p.cursor)
		} else {
			return nil, errNoCursor(p.cursor)
		}
		return &tagRows{tag: p.tag}, nil
	}
	c := s.cursors[p.cursor]
	if c == nil {
		return nil, errNoCursor(p.cursor)
	}
	return &fetchRows{c: c, left: p.count, move: p.move, tag: p.tag}, nil
}

// closeCursors closes the cursors that end with the transaction block, or
// all of them.
func (s *session) closeCursors(all bool) {
	for name, c := range s.cursors {
		if all || !c.hold {
			c.rows.Close()
			delete(s.cursors, name)
		}
	}
}

// fetchRows reads up to left rows (all when negative) from a cursor; a
// MOVE reads them without returning them.
type fetchRows struct {
	c    *cursor
	left int64
	move bool
	n    int64
	tag  string
}

func (f *fetchRows) Next(ctx context.Context) ([]any, error) {
	for f.left != 0 {
		row, err := f.c.rows.Next(ctx)
		if err != nil {
			return nil, err
		}
		f.left--
		f.n++
		if !f.move {
			return row, nil
		}
	}
	return nil, io.EOF
}

func (f *fetchRows) Tag() string  { return fmt.Sprintf("%s %d", f.tag, f.n) }
func (f *fetchRows) Close() error { return nil }

// checkPreparedName gives PREPARE and DEALLOCATE Postgres's errors, which
// DuckDB does not raise (it replaces a prepared statement of the same name
// and ignores an unknown one), and runs DEALLOCATE ALL, which DuckDB lacks.
func (p *prepared) checkPreparedName(ctx context.Context) error {
	s := p.s
	switch {
	case p.prepName != "" && s.has(p.prepName):
		return &pgconn.PgError{Severity: "ERROR", Code: "42P05", Message: fmt.Sprintf("prepared statement \"%s\" already exists", p.prepName)}
	case p.deallocName != "" && !s.has(p.deallocName):
		return errNoPrepared(p.deallocName)
	case p.deallocAll:
		for name := range s.prepared {
			if err := s.exec(ctx, "DEALLOCATE "+quoteIdent(name)); err != nil {
				return translate(err)
			}
			delete(s.prepared, name)
		}
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func errNoPrepared(name string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: "26000", Message: fmt.Sprintf("prepared statement \"%s\" does not exist", name)}
}

// has reports whether a prepared statement of that name exists.
func (s *session) has(name string) bool {
	_, ok := s.prepared[name]
	return ok
}
