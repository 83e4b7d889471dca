package functions

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/sql"
	"github.com/pgcdc/pgcdc/wire"
)

// Proxy is the wire.Forwarder of pgcdc over a Postgres destination: each
// client session is forwarded to a session of its own on the destination,
// and only calls of our functions are answered here. Everything else (the
// destination's own SET, SHOW, version(), catalog, COPY, errors) is the
// destination's, message for message: no compat emulation applies.
type Proxy struct {
	env *Env
	// dest connects to the destination, credentials included: never log
	// it.
	dest *pgconn.Config
}

var _ wire.Forwarder = (*Proxy)(nil)

// NewProxy checks that every catalog function has an implementation.
// Client sessions log in to the destination with dest's credentials.
func NewProxy(env *Env, dest *pgconn.Config) (*Proxy, error) {
	if err := checkImpls(env.Catalog); err != nil {
		return nil, err
	}
	return &Proxy{env: env, dest: dest}, nil
}

// Forward implements wire.Forwarder.
func (p *Proxy) Forward(ctx context.Context, info wire.SessionInfo) (wire.Upstream, error) {
	up, err := wire.ConnectUpstream(ctx, p.dest, info)
	if err != nil {
		p.env.Log.Warn().Err(err).Str("user", info.User).Str("remote", info.RemoteAddr).
			Msg("proxy: cannot open a session on the destination")
		return nil, err
	}
	return &proxySession{PostgresUpstream: up, env: p.env}, nil
}

// proxySession is one client's session on the destination.
type proxySession struct {
	*wire.PostgresUpstream
	env *Env
}

// Intercept implements wire.Upstream. A query that mentions none of our
// function names (the catalog's pre-filter, no parse) is forwarded as it
// came. A query string holding a call among other statements is split, and
// the other statements go to the destination one by one, in the same
// implicit transaction (see wire.Upstream).
func (s *proxySession) Intercept(_ context.Context, query string, paramOIDs []uint32) ([]wire.Part, error) {
	cat := s.env.Catalog
	if !cat.Mentions(query) {
		return nil, nil
	}
	pieces, err := sql.Split(query)
	if err != nil {
		return nil, err
	}
	if len(pieces) == 1 {
		call, err := classifyForProxy(cat, pieces[0])
		if err != nil || call == nil {
			return nil, err
		}
		return []wire.Part{{Statement: s.call(call, paramOIDs)}}, nil
	}
	parts := make([]wire.Part, len(pieces))
	found := false
	for i, q := range pieces {
		call, err := classifyForProxy(cat, q)
		switch {
		case err != nil:
			// It fails when its turn comes, after the statements before
			// it ran, as in Postgres.
			parts[i].Statement, found = failedStatement{err}, true
		case call != nil:
			parts[i].Statement, found = s.call(call, nil), true
		default:
			parts[i].Query = q
		}
	}
	if !found {
		return nil, nil
	}
	for _, p := range parts {
		if p.Statement == nil && sql.CopiesFromClient(p.Query) {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: "0A000",
				Message: "pgcdc: COPY ... FROM STDIN cannot share a query string with a call of pgcdc's functions; send it on its own"}
		}
	}
	return parts, nil
}

// classifyForProxy is Classify with the shapes a forwarded session cannot
// run refused in its own words. Over DuckDB, a statement that uses our
// functions' rows runs them and then the rest of the statement
// (sql.Embedded); a forwarded session's statements run upstream, as the
// client sent them, so only the simple shapes are ours to answer.
func classifyForProxy(cat *sql.Catalog, q string) (*sql.Call, error) {
	call, embedded, err := cat.ClassifyAny(q)
	if embedded != nil {
		fn := embedded.Calls[0].Function.Name
		return nil, &pgconn.PgError{Severity: "ERROR", Code: "0A000",
			Message: fmt.Sprintf("pgcdc: over a Postgres destination, %[1]s() must be called as SELECT %[1]s(...) or SELECT * FROM %[1]s(...)", fn),
			Detail:  "The rest of the statement would run on the destination, which cannot call pgcdc's functions.",
			Hint:    fmt.Sprintf("Call SELECT * FROM %s(...) on its own, then run the rest of the statement.", fn)}
	}
	return call, err
}

func (s *proxySession) call(call *sql.Call, paramOIDs []uint32) *callStatement {
	return &callStatement{env: s.env, call: call, declared: paramOIDs}
}

// failedStatement is a statement that fails when it runs.
type failedStatement struct{ err error }

func (f failedStatement) ParamOIDs() []uint32    { return nil }
func (f failedStatement) Columns() []wire.Column { return nil }
func (f failedStatement) Execute(context.Context, []any, wire.Notifier) (wire.Result, error) {
	return nil, f.err
}

// DeclareFunctions declares the catalog in the destination: schema pgcdc
// with every function's signature and documentation, so that \df pgcdc.*
// and database browsers list them (sql.Catalog.DestinationSQL). It is
// idempotent and runs at start-up.
func DeclareFunctions(ctx context.Context, dest *pgconn.Config, cat *sql.Catalog) error {
	conn, err := pgconn.ConnectConfig(ctx, dest.Copy())
	if err != nil {
		return fmt.Errorf("declare functions: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, cat.DestinationSQL()).ReadAll(); err != nil {
		return fmt.Errorf("declare functions: %w", err)
	}
	return nil
}
