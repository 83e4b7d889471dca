package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	pgsql "github.com/pgcdc/pgcdc/sql"
)

// COPY ... TO STDOUT and COPY ... FROM STDIN are the client's COPY
// sub-protocol: the data travels on the client's connection, and DuckDB
// never sees the statement (it would take STDOUT for pgcdc's own standard
// output). COPY TO runs the equivalent SELECT through the session like any
// other query, policy included; COPY FROM inserts the rows with prepared
// multi-row INSERTs, in a transaction of its own unless the client has a
// block open. COPY TO holds one row in memory, COPY FROM one batch of
// copyBatchParams values.

// copyPrepared is a prepared COPY to or from the client.
type copyPrepared struct {
	s     *session
	c     *pgsql.Copy
	table string // for error context
	// COPY TO: the query whose rows are copied.
	query *prepared
	// COPY FROM: the exact table, and its columns.
	target string
	cols   []pgsql.Field
}

func (p *copyPrepared) ParamOIDs() []uint32   { return nil }
func (p *copyPrepared) Fields() []pgsql.Field { return nil }
func (p *copyPrepared) Close() error          { return nil }

// prepareCopy checks a COPY to or from the client and describes what it
// copies.
func (s *session) prepareCopy(ctx context.Context, c *pgsql.Copy) (pgsql.Prepared, error) {
	if s.failed {
		return nil, errAborted
	}
	p := &copyPrepared{s: s, c: c, table: c.Table}
	if c.Table == "" {
		p.table = "STDOUT"
	}
	if !c.From {
		q := c.Query
		if q == "" {
			q = "SELECT " + selectList(c.Columns) + " FROM " + relation(c.Schema, c.Table)
		}
		inner, err := s.Prepare(ctx, q)
		if err != nil {
			return nil, err
		}
		ip, ok := inner.(*prepared)
		if !ok || ip.kind != kindRows {
			s.Abort()
			return nil, featureNotSupported("COPY query must have a RETURNING clause or return rows", "")
		}
		p.query = ip
		return p, nil
	}
	target, err := s.copyTarget(ctx, c.Schema, c.Table)
	if err != nil {
		s.Abort()
		return nil, err
	}
	p.target = target
	described, err := s.Prepare(ctx, "SELECT "+selectList(c.Columns)+" FROM "+target)
	if err != nil {
		return nil, err
	}
	p.cols = described.Fields()
	return p, nil
}

func selectList(cols []string) string {
	if len(cols) == 0 {
		return "*"
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = ident(c)
	}
	return strings.Join(q, ", ")
}

func relation(schema, table string) string {
	if schema == "" {
		return ident(table)
	}
	return ident(schema, table)
}

// copyTarget resolves the table a COPY FROM writes to, the way DuckDB
// would (temporary tables first, then the search path), and refuses the
// replica's own tables and pgcdc's state: clients cannot change what
// replicate() maintains.
func (s *session) copyTarget(ctx context.Context, schema, table string) (string, error) {
	rows, err := s.query(ctx, `SELECT database_name, schema_name, table_name FROM system.main.duckdb_tables()
		WHERE lower(table_name) = lower(?) AND (? = '' OR lower(schema_name) = lower(?))`, table, schema, schema)
	if err != nil {
		return "", translate(err)
	}
	pathRaw, err := s.queryValue(ctx, "SELECT system.main.current_schemas(false)")
	if err != nil {
		return "", translate(err)
	}
	var path []string
	if list, ok := pathRaw.([]any); ok {
		for _, v := range list {
			if name, ok := v.(string); ok {
				path = append(path, strings.ToLower(name))
			}
		}
	}
	dbName, err := s.queryValue(ctx, "SELECT system.main.current_database()")
	if err != nil {
		return "", translate(err)
	}
	best, bestRank := []string(nil), 1<<30
	for _, r := range rows {
		db, sch, name := r[0].(string), r[1].(string), r[2].(string)
		rank := -1
		switch {
		case db == "temp":
			rank = 0
		case db != dbName:
			continue
		case schema != "":
			rank = 1
		default:
			for i, p := range path {
				if p == strings.ToLower(sch) {
					rank = i + 1
					break
				}
			}
		}
		if rank >= 0 && rank < bestRank {
			best, bestRank = []string{db, sch, name}, rank
		}
	}
	shown := table
	if schema != "" {
		shown = schema + "." + table
	}
	if best == nil {
		return "", &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: fmt.Sprintf("relation \"%s\" does not exist", shown)}
	}
	if best[0] != "temp" {
		if strings.EqualFold(best[1], stateSchema) {
			return "", permissionDenied("permission denied for schema "+stateSchema,
				"Schema "+stateSchema+" holds pgcdc's replication state; clients may read it with SELECT and nothing else.", "")
		}
		owned, err := s.query(ctx, "SELECT 1 FROM "+ident(stateSchema, "tables")+" WHERE lower(dest_schema) = lower(?) AND lower(dest_name) = lower(?) LIMIT 1", best[1], best[2])
		if err != nil {
			return "", translate(err)
		}
		if len(owned) > 0 {
			return "", permissionDenied(fmt.Sprintf("permission denied for table %s", shown),
				"It is a replicated table: replicate() maintains it, and rows a client added would be lost or break the next merge.",
				"Copy into a table of your own, or change the source and call replicate().")
		}
	}
	return ident(best...), nil
}

// query runs one of pgcdc's own queries with arguments and returns its
// rows; it is for small answers only.
func (s *session) query(ctx context.Context, q string, args ...any) ([][]driver.Value, error) {
	st, err := s.conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := st.(*duckdb.Stmt).QueryContext(ctx, named)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]driver.Value
	for {
		vals := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(vals); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, vals)
	}
}

// Query implements pgsql.Prepared.
func (p *copyPrepared) Query(ctx context.Context, _ []any) (pgsql.Rows, error) {
	s := p.s
	if s.failed {
		return nil, errAborted
	}
	if !p.c.From {
		rows, err := p.query.Query(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &copyOutRows{Rows: rows, spec: pgsql.CopySpec{Table: p.table, Columns: p.query.fields, Options: p.c.Options}}, nil
	}
	names := make([]string, len(p.cols))
	for i, f := range p.cols {
		names[i] = f.Name
	}
	r := &copyInRows{p: p, implicit: !s.inTx, insert: "INSERT INTO " + p.target + " (" + selectList(names) + ") VALUES ",
		batch: max(1, copyBatchParams/max(1, len(p.cols)))}
	if r.implicit {
		if err := s.exec(ctx, "BEGIN TRANSACTION"); err != nil {
			return nil, s.fail(err, false)
		}
	}
	// Prepare one row's INSERT now, so that a statement the policy or
	// DuckDB refuses fails before the client sends any data.
	st, err := r.prepare(1)
	if err != nil {
		r.End(ctx, err)
		return nil, err
	}
	st.Close()
	return r, nil
}

// copyBatchParams bounds the parameters of one INSERT of COPY FROM's rows:
// rows go to DuckDB in multi-row INSERTs, which cost about what one row
// does, and this many values are all that is held at a time.
const copyBatchParams = 4096

// copyOutRows are the rows of COPY TO STDOUT.
type copyOutRows struct {
	pgsql.Rows
	spec pgsql.CopySpec
	n    int64
}

func (r *copyOutRows) CopyOut() pgsql.CopySpec { return r.spec }

func (r *copyOutRows) Next(ctx context.Context) ([]any, error) {
	row, err := r.Rows.Next(ctx)
	if err == nil {
		r.n++
	}
	return row, err
}

func (r *copyOutRows) Tag() string { return fmt.Sprintf("COPY %d", r.n) }

// copyInRows takes the rows of COPY FROM STDIN, a batch at a time.
type copyInRows struct {
	p        *copyPrepared
	insert   string // up to VALUES
	batch    int    // rows per full INSERT
	full     *duckdb.Stmt
	pending  []any // the values of the rows not inserted yet
	implicit bool  // the copy runs in a transaction of its own
	n        int64
	ended    bool
}

func (r *copyInRows) CopyIn() pgsql.CopySpec {
	return pgsql.CopySpec{Table: r.p.table, Columns: r.p.cols, Options: r.p.c.Options}
}

// prepare prepares the INSERT of rows rows.
func (r *copyInRows) prepare(rows int) (*duckdb.Stmt, error) {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(r.p.cols)), ", ") + ")"
	var sb strings.Builder
	sb.WriteString(r.insert)
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(one)
	}
	st, _, err := r.p.s.prepare(sb.String())
	return st, err
}

func (r *copyInRows) Put(ctx context.Context, row []any) error {
	r.pending = append(r.pending, row...)
	if len(r.pending) < r.batch*len(r.p.cols) {
		return nil
	}
	if r.full == nil {
		st, err := r.prepare(r.batch)
		if err != nil {
			return err
		}
		r.full = st
	}
	return r.flush(ctx, r.full)
}

// flush inserts the pending rows with st.
func (r *copyInRows) flush(ctx context.Context, st *duckdb.Stmt) error {
	named, err := r.p.s.namedArgs(r.pending)
	if err != nil {
		return translate(err)
	}
	if _, err := st.ExecContext(ctx, named); err != nil {
		return translate(err)
	}
	r.n += int64(len(r.pending) / max(1, len(r.p.cols)))
	r.pending = r.pending[:0]
	return nil
}

func (r *copyInRows) End(ctx context.Context, err error) error {
	if r.ended {
		return err
	}
	r.ended = true
	s := r.p.s
	if err == nil && len(r.pending) > 0 {
		var st *duckdb.Stmt
		if st, err = r.prepare(len(r.pending) / max(1, len(r.p.cols))); err == nil {
			err = r.flush(ctx, st)
			st.Close()
		}
	}
	if r.full != nil {
		r.full.Close()
	}
	r.pending = nil
	if err == nil && r.implicit {
		if cerr := s.exec(ctx, "COMMIT"); cerr != nil {
			return s.fail(cerr, true)
		}
		return nil
	}
	if err == nil {
		return nil
	}
	if r.implicit {
		s.exec(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	// Inside the client's block: the block fails, as in Postgres.
	s.Abort()
	return err
}

func (r *copyInRows) Next(context.Context) ([]any, error) { return nil, io.EOF }
func (r *copyInRows) Tag() string                         { return fmt.Sprintf("COPY %d", r.n) }

// Close ends a copy the front end never finished (the connection went
// away before End).
func (r *copyInRows) Close() error {
	if !r.ended {
		r.End(context.Background(), errors.New("copy abandoned"))
	}
	return nil
}
