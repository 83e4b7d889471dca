package duckdb

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

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
)

type prepared struct {
	s      *session
	query  string // for transaction statements, what DuckDB runs
	kind   stmtKind
	tag    string // command tag verb(s), e.g. "INSERT", "CREATE TABLE"
	fields []pgsql.Field
	types  []duckdb.Type
	params []uint32
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
	st, typ, err := s.prepare(query)
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
	for i := 0; i < n; i++ {
		name, _ := ds.ColumnName(i)
		info, err := ds.ColumnTypeInfo(i)
		if err != nil {
			return err
		}
		oid, size := pgType(info)
		p.fields = append(p.fields, pgsql.Field{Name: name, OID: oid, Size: size, TypeMod: -1})
		p.types = append(p.types, info.InternalType())
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
		if n == 1 && p.fields[0].Name == "Count" {
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
	if err := s.exec(ctx, p.query); err != nil {
		return nil, s.fail(err, p.kind != kindBegin)
	}
	if p.kind == kindBegin {
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
func (p *prepared) Query(ctx context.Context, args []any) (pgsql.Rows, error) {
	switch p.kind {
	case kindBegin, kindCommit, kindRollback:
		return p.transaction(ctx)
	}
	s := p.s
	if s.failed {
		return nil, errAborted
	}
	st, typ, err := s.prepare(p.query)
	if err != nil {
		s.Abort()
		return nil, err
	}
	named, err := s.namedArgs(args)
	if err != nil {
		st.Close()
		s.Abort()
		return nil, translate(err)
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
		out[i] = pgValue(r.p.types[i], v)
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
