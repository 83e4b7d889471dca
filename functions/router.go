package functions

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
	"github.com/pgcdc/pgcdc/wire"
)

// Env is what every function needs.
type Env struct {
	Repl    *replicator.Replicator
	Catalog *sql.Catalog
	Log     zerolog.Logger
}

// impl is the Go side of one catalog function.
type impl func(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error)

// impls binds catalog names to their implementations; NewRouter checks that
// the two agree, so the SQL declaration and the code cannot drift apart.
var impls = map[string]impl{
	"init_replication":   initReplication,
	"replicate":          replicate,
	"replication_status": replicationStatus,
	"drop_replication":   dropReplication,
	"verify_replication": verifyReplication,
	"check_replication":  checkReplication,
	"start_replication":  startReplication,
	"stop_replication":   stopReplication,
	"pause_replication":  pauseReplication,
	"resume_replication": resumeReplication,
	"resync_table":       resyncTable,
}

// Router is the wire.Handler of pgcdc.
type Router struct {
	env  *Env
	pass sql.Backend
}

var _ wire.Handler = (*Router)(nil)

// NewRouter checks that every catalog function has an implementation.
func NewRouter(env *Env, pass sql.Backend) (*Router, error) {
	if err := checkImpls(env.Catalog); err != nil {
		return nil, err
	}
	return &Router{env: env, pass: pass}, nil
}

// checkImpls makes sure every catalog function has an implementation.
func checkImpls(c *sql.Catalog) error {
	for _, f := range c.Functions {
		if impls[f.Name] == nil {
			return fmt.Errorf("functions: catalog declares %s() but it has no implementation", f.Name)
		}
	}
	return nil
}

// NewSession implements wire.Handler.
func (r *Router) NewSession(ctx context.Context, info wire.SessionInfo) (wire.SessionHandler, error) {
	ds, err := r.pass.OpenSession(ctx)
	if err != nil {
		return nil, err
	}
	return &session{r: r, dest: ds, settings: newSessionSettings(info)}, nil
}

type session struct {
	r        *Router
	dest     sql.Session
	settings *sessionSettings
}

func (s *session) TxStatus() byte { return s.dest.TxStatus() }
func (s *session) Close() error   { return s.dest.Close() }

// Failed implements wire.SessionHandler: any failed statement aborts an
// open transaction block, as in Postgres, including the ones that never
// reached the destination (our functions, parameters that did not decode).
func (s *session) Failed(error) {
	if a, ok := s.dest.(aborter); ok {
		a.Abort()
	}
}

// aborter is a destination session that tracks transaction blocks.
type aborter interface{ Abort() }

// errAborted is Postgres's answer to anything but ROLLBACK in a failed
// transaction block.
var errAborted = &pgconn.PgError{Severity: "ERROR", Code: "25P02",
	Message: "current transaction is aborted, commands ignored until end of transaction block"}

// Parse implements wire.SessionHandler. A lone statement is prepared at
// once, so errors surface at Parse as in Postgres; in a multi-statement
// simple query each passthrough statement is prepared just before it runs,
// because it may depend on the ones before it (CREATE TABLE t; INSERT INTO t).
// Parameter types the client declared win over inferred ones, as in
// Postgres: pgJDBC declares varchar for setString and int4 for setInt.
func (s *session) Parse(ctx context.Context, query string, paramOIDs []uint32) ([]wire.Statement, error) {
	pieces, err := sql.Split(query)
	if err != nil {
		return nil, err
	}
	stmts := make([]wire.Statement, 0, len(pieces))
	for _, q := range pieces {
		compat, err := s.compatStatement(q)
		if err != nil {
			return nil, err
		}
		if compat != nil {
			stmts = append(stmts, compat)
			continue
		}
		call, embedded, err := s.r.env.Catalog.ClassifyAny(q)
		if err != nil {
			return nil, err
		}
		if call != nil {
			stmts = append(stmts, &callStatement{env: s.r.env, call: call, declared: paramOIDs, txStatus: s.dest.TxStatus})
			continue
		}
		if embedded != nil {
			es := &embeddedStatement{s: s, e: embedded, declared: paramOIDs}
			if err := es.describe(ctx); err != nil {
				return nil, err
			}
			stmts = append(stmts, es)
			continue
		}
		ps := &passStatement{s: s, query: q, declared: paramOIDs}
		if len(pieces) == 1 {
			if err := ps.prepare(ctx); err != nil {
				return nil, err
			}
		}
		stmts = append(stmts, ps)
	}
	return stmts, nil
}

// withDeclared overlays the parameter types a client declared in Parse
// (zero: unspecified) on the inferred ones. A client may declare more
// parameters than the statement uses; Postgres accepts that too.
func withDeclared(inferred, declared []uint32) []uint32 {
	out := append([]uint32(nil), inferred...)
	for len(out) < len(declared) {
		out = append(out, 0)
	}
	for i, oid := range declared {
		if oid != 0 {
			out[i] = oid
		}
	}
	return out
}

// callStatement is a call of one of our functions.
type callStatement struct {
	env      *Env
	call     *sql.Call
	declared []uint32
	// txStatus, when set, is the session's transaction status: a call in
	// a failed block is refused, as Postgres refuses any statement there.
	// A forwarded session leaves it to the wire layer, which knows the
	// upstream's.
	txStatus func() byte
}

func (c *callStatement) ParamOIDs() []uint32 { return withDeclared(c.call.ParamOIDs(), c.declared) }

// Columns follows Postgres: SELECT * FROM f() returns f's columns; SELECT
// f() returns one column named f holding the row in record text form. The
// record goes out as text: Postgres's binary record format is not worth
// the risk for a column clients only display.
func (c *callStatement) Columns() []wire.Column {
	cols := make([]wire.Column, len(c.call.Columns))
	for i, oc := range c.call.Columns {
		oid := oc.Type.OID
		if oc.Index < 0 {
			oid = pgtype.TextOID
		}
		// Size and modifier left zero: the wire layer fills in the type's.
		cols[i] = wire.Column{Name: oc.Name, OID: oid}
	}
	return cols
}

func (c *callStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	if c.txStatus != nil && c.txStatus() == 'E' {
		return nil, errAborted
	}
	if used := len(c.call.ParamOIDs()); len(params) > used {
		params = params[:used]
	}
	args, err := c.call.Bind(params)
	if err != nil {
		return nil, err
	}
	fn := impls[c.call.Function.Name]
	notice := func(msg string) { n.Notice("NOTICE", msg) }
	rows, err := fn(ctx, c.env, args, notice)
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rows))
	for i, row := range rows {
		proj := make([]any, len(c.call.Columns))
		for j, oc := range c.call.Columns {
			if oc.Index < 0 {
				proj[j] = recordText(row)
			} else {
				proj[j] = row[oc.Index]
			}
		}
		out[i] = proj
	}
	return &sliceResult{rows: out}, nil
}

// recordText renders a row as Postgres prints a record: (a,b,"c d").
func recordText(row []any) string {
	var sb strings.Builder
	sb.WriteByte('(')
	for i, v := range row {
		if i > 0 {
			sb.WriteByte(',')
		}
		if v == nil {
			continue
		}
		var s string
		switch x := v.(type) {
		case []string:
			s = sql.FormatTextArray(x)
		case bool:
			s = "f"
			if x {
				s = "t"
			}
		default:
			s = fmt.Sprint(x)
		}
		if s == "" || strings.ContainsAny(s, `,()"\ `+"\t\n") {
			s = `"` + strings.NewReplacer(`"`, `""`, `\`, `\\`).Replace(s) + `"`
		}
		sb.WriteString(s)
	}
	sb.WriteByte(')')
	return sb.String()
}

type sliceResult struct {
	rows [][]any
	i    int
	tag  string // "SELECT n" when empty
}

func (r *sliceResult) Next(context.Context) ([]any, error) {
	if r.i >= len(r.rows) {
		return nil, io.EOF
	}
	r.i++
	return r.rows[r.i-1], nil
}

func (r *sliceResult) Tag() string {
	if r.tag != "" {
		return r.tag
	}
	return fmt.Sprintf("SELECT %d", len(r.rows))
}
func (r *sliceResult) Close() error { return nil }

// embeddedStatement is a statement that uses our functions' rows: the
// calls run first, each once, and the statement, with their rows in place
// of the calls, goes to the destination (sql.Embedded). It is described
// by preparing it with no rows in their place.
type embeddedStatement struct {
	s         *session
	e         *sql.Embedded
	declared  []uint32
	cols      []wire.Column
	paramOIDs []uint32
}

func (es *embeddedStatement) describe(ctx context.Context) error {
	if es.s.dest.TxStatus() == 'E' {
		return errAborted
	}
	text, olds, err := es.e.Rewrite(nil)
	if err != nil {
		return err
	}
	p, err := es.s.dest.Prepare(ctx, text)
	if err != nil {
		return err
	}
	defer p.Close()
	es.paramOIDs = es.e.CallParamOIDs()
	for k, oid := range p.ParamOIDs() {
		if k < len(olds) && es.paramOIDs[olds[k]-1] == 0 {
			es.paramOIDs[olds[k]-1] = oid
		}
	}
	for _, f := range p.Fields() {
		es.cols = append(es.cols, wire.Column{Name: f.Name, OID: f.OID, TypeSize: f.Size, TypeMod: f.TypeMod})
	}
	return nil
}

func (es *embeddedStatement) ParamOIDs() []uint32    { return withDeclared(es.paramOIDs, es.declared) }
func (es *embeddedStatement) Columns() []wire.Column { return es.cols }

func (es *embeddedStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	if es.s.dest.TxStatus() == 'E' {
		return nil, errAborted
	}
	results := make([][][]any, len(es.e.Calls))
	for i, call := range es.e.Calls {
		used := len(call.ParamOIDs())
		if used > len(params) {
			return nil, fmt.Errorf("functions: %d parameters for a call that uses %d", len(params), used)
		}
		args, err := call.Bind(params[:used])
		if err != nil {
			return nil, err
		}
		rows, err := impls[call.Function.Name](ctx, es.s.r.env, args, func(msg string) { n.Notice("NOTICE", msg) })
		if err != nil {
			return nil, err
		}
		results[i] = rows
	}
	text, olds, err := es.e.Rewrite(results)
	if err != nil {
		return nil, err
	}
	p, err := es.s.dest.Prepare(ctx, text)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(olds))
	for k, old := range olds {
		if old-1 < len(params) {
			args[k] = params[old-1]
		}
	}
	if used := len(p.ParamOIDs()); len(args) > used {
		args = args[:used]
	}
	rows, err := p.Query(ctx, args)
	if err != nil {
		p.Close()
		return nil, err
	}
	return rows, nil
}

// passStatement goes to the destination.
type passStatement struct {
	s        *session
	query    string
	declared []uint32
	p        sql.Prepared
	err      error
}

func (p *passStatement) prepare(ctx context.Context) error {
	if p.p == nil && p.err == nil {
		p.p, p.err = p.s.dest.Prepare(ctx, p.query)
	}
	return p.err
}

func (p *passStatement) ParamOIDs() []uint32 {
	if p.prepare(context.Background()) != nil {
		return nil
	}
	return withDeclared(p.p.ParamOIDs(), p.declared)
}

func (p *passStatement) Columns() []wire.Column {
	if p.prepare(context.Background()) != nil {
		return nil
	}
	fs := p.p.Fields()
	if fs == nil {
		return nil
	}
	cols := make([]wire.Column, len(fs))
	for i, f := range fs {
		cols[i] = wire.Column{Name: f.Name, OID: f.OID, TypeSize: f.Size, TypeMod: f.TypeMod}
	}
	return cols
}

func (p *passStatement) Execute(ctx context.Context, params []any, _ wire.Notifier) (wire.Result, error) {
	if err := p.prepare(ctx); err != nil {
		return nil, err
	}
	if used := len(p.p.ParamOIDs()); len(params) > used {
		params = params[:used]
	}
	rows, err := p.p.Query(ctx, params)
	if err != nil {
		return nil, err
	}
	return copyResult(rows)
}

// copyResult hands the destination's COPY to or from the client to the
// wire layer, which runs the COPY sub-protocol for it.
func copyResult(rows sql.Rows) (wire.Result, error) {
	switch r := rows.(type) {
	case sql.CopyOutRows:
		opts, err := copyOptions(r.CopyOut())
		if err != nil {
			r.Close()
			return nil, err
		}
		return copyOutResult{r, opts}, nil
	case sql.CopyInRows:
		opts, err := copyOptions(r.CopyIn())
		if err != nil {
			r.End(context.Background(), err)
			r.Close()
			return nil, err
		}
		return copyInResult{r, opts}, nil
	}
	return rows, nil
}

type copyOutResult struct {
	sql.CopyOutRows
	opts wire.CopyOptions
}

func (r copyOutResult) CopyOut() wire.CopyOptions { return r.opts }

type copyInResult struct {
	sql.CopyInRows
	opts wire.CopyOptions
}

func (r copyInResult) CopyIn() wire.CopyOptions { return r.opts }

// copyOptions turns the statement's options into the wire layer's, with
// the per-column ones resolved against the copied columns.
func copyOptions(spec sql.CopySpec) (wire.CopyOptions, error) {
	o := spec.Options
	out := wire.CopyOptions{
		Format: wire.CopyFormat(o.Format), Table: spec.Table,
		Delimiter: o.Delimiter, Null: o.Null, Header: o.Header, HeaderMatch: o.HeaderMatch,
		Quote: o.Quote, Escape: o.Escape,
	}
	out.Columns = make([]wire.Column, len(spec.Columns))
	for i, f := range spec.Columns {
		out.Columns[i] = wire.Column{Name: f.Name, OID: f.OID, TypeSize: f.Size, TypeMod: f.TypeMod}
	}
	flags := func(option string, names []string) ([]bool, error) {
		if names == nil {
			return nil, nil
		}
		set := make([]bool, len(spec.Columns))
		for _, n := range names {
			i := slices.IndexFunc(spec.Columns, func(f sql.Field) bool { return f.Name == n })
			if i < 0 {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: "42P10",
					Message: fmt.Sprintf("%s column \"%s\" not referenced by COPY", option, n)}
			}
			set[i] = true
		}
		return set, nil
	}
	var err error
	if o.ForceQuoteAll {
		out.ForceQuote = make([]bool, len(spec.Columns))
		for i := range out.ForceQuote {
			out.ForceQuote[i] = true
		}
	} else if out.ForceQuote, err = flags("FORCE_QUOTE", o.ForceQuote); err != nil {
		return out, err
	}
	if out.ForceNotNull, err = flags("FORCE_NOT_NULL", o.ForceNotNull); err != nil {
		return out, err
	}
	if out.ForceNull, err = flags("FORCE_NULL", o.ForceNull); err != nil {
		return out, err
	}
	return out, nil
}
