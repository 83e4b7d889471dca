package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	pgsql "github.com/pgcdc/pgcdc/sql"
)

// OpenSession implements pgsql.Backend. The session owns a
// connection of its own, opened for it and closed with it: nothing a client
// leaves behind (a setting, an open transaction, a temporary object)
// outlives its session, and the engine's pool never sees it.
func (d *Destination) OpenSession(ctx context.Context) (pgsql.Session, error) {
	dc, err := d.connector.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	s := &session{d: d, conn: dc.(*duckdb.Conn), results: map[*resultRows]struct{}{}, cursors: map[string]*cursor{}, prepared: map[string][]string{}}
	// Postgres users write orders for public.orders; DuckDB's default
	// schema is main.
	if err := s.exec(ctx, "SET search_path = 'public,main'"); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	return s, nil
}

// session is one client's DuckDB connection. It uses the driver directly,
// not database/sql: a *sql.Conn goes back to a pool when released, and
// database/sql prepares through the driver's PrepareContext, which runs
// every statement of a multi-statement text but the last while
// "preparing". (*duckdb.Conn).Prepare takes exactly one statement and runs
// nothing.
type session struct {
	d    *Destination
	conn *duckdb.Conn
	// inTx is DuckDB's answer, when last asked, to whether conn has a
	// transaction open. Only transaction statements and errors change it,
	// so it is asked after those alone.
	inTx bool
	// failed is Postgres's 'E': a statement failed inside a transaction
	// block. DuckDB's transaction is rolled back at once (DuckDB keeps some
	// failed transactions alive, Postgres never does); the block stays
	// failed until the client ends it.
	failed bool
	// results are the open results, closed with the session.
	results map[*resultRows]struct{}
	// cursors are DECLAREd cursors, by name.
	cursors map[string]*cursor
	// prepared are the SQL-level prepared statements (PREPARE), by name,
	// with the Postgres names of their result columns.
	prepared map[string][]string
	// loc is the session's TimeZone, in which timestamptz values are shown.
	loc *time.Location
	// timeout is statement_timeout; zero for none.
	timeout time.Duration
	// readOnlyDefault is default_transaction_read_only; txReadOnly is the
	// open block's access mode (BEGIN READ ONLY, SET TRANSACTION).
	readOnlyDefault, txReadOnly bool
}

var _ pgsql.SettingsSession = (*session)(nil)

// ApplySetting implements pgsql.SettingsSession.
func (s *session) ApplySetting(ctx context.Context, name, value string) error {
	switch name {
	case "timezone":
		if value == "" {
			s.loc = nil
			return nil
		}
		loc, err := pgsql.LoadTimeZone(value)
		if err != nil {
			return &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: err.Error()}
		}
		s.loc = loc
	case "statement_timeout":
		d, err := pgsql.ParseMilliseconds(value)
		if value != "" && err != nil {
			return &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: err.Error()}
		}
		s.timeout = d
	case "default_transaction_read_only":
		s.readOnlyDefault = isOn(value)
	case "transaction_read_only":
		if s.inTx {
			s.txReadOnly = isOn(value)
		}
	case "search_path":
		return s.setSearchPath(ctx, value)
	}
	return nil
}

// TransactionSetting implements pgsql.SettingsSession. DuckDB has one
// isolation level, snapshot isolation: every statement, and every
// statement of a block, sees one snapshot, which is Postgres's REPEATABLE
// READ.
func (s *session) TransactionSetting(name string) string {
	switch name {
	case "transaction_read_only":
		if s.readOnly() {
			return "on"
		}
		return "off"
	case "transaction_isolation":
		return "repeatable read"
	}
	return ""
}

func isOn(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}

// readOnly reports whether the statement about to run may not write.
func (s *session) readOnly() bool {
	if s.inTx {
		return s.txReadOnly
	}
	return s.readOnlyDefault
}

// setSearchPath follows SET search_path: Postgres takes a list of schemas,
// any of which may not exist; DuckDB's search_path refuses a schema that
// does not. So DuckDB gets the schemas that exist, in order, then main, so
// that the replica's tables and DuckDB's own functions stay reachable
// unqualified as before ("public" is a DuckDB schema of its own).
func (s *session) setSearchPath(ctx context.Context, value string) error {
	if value == "" {
		value = "public"
	}
	st, err := s.conn.Prepare("SELECT system.main.list(schema_name) FROM system.main.duckdb_schemas() WHERE database_name = system.main.current_database()")
	if err != nil {
		return translate(err)
	}
	rows, err := st.(*duckdb.Stmt).QueryContext(ctx, nil)
	if err != nil {
		st.Close()
		return translate(err)
	}
	vals := make([]driver.Value, 1)
	err = rows.Next(vals)
	rows.Close()
	st.Close()
	if err != nil {
		return translate(err)
	}
	exists := map[string]bool{}
	if list, ok := vals[0].([]any); ok {
		for _, v := range list {
			if name, ok := v.(string); ok {
				exists[name] = true
			}
		}
	}
	var path []string
	for _, schema := range splitSearchPath(value) {
		if exists[schema] && schema != "main" {
			path = append(path, `"`+strings.ReplaceAll(schema, `"`, `""`)+`"`)
		}
	}
	path = append(path, "main")
	before, err := s.searchPath(ctx)
	if err != nil {
		return translate(err)
	}
	if err := s.exec(ctx, "SET search_path = "+quoteLiteral(strings.Join(path, ","))); err != nil {
		return translate(err)
	}
	return s.guardSearchPath(ctx, before)
}

// splitSearchPath reads a search_path value as Postgres does: a comma
// separated list of identifiers, double-quoted ones kept as written, the
// others folded to lower case. "$user" names no schema here: pgcdc has no
// per-user schemas.
func splitSearchPath(v string) []string {
	var out []string
	for i := 0; i < len(v); {
		for i < len(v) && (v[i] == ' ' || v[i] == ',' || v[i] == '\t') {
			i++
		}
		if i >= len(v) {
			break
		}
		var name strings.Builder
		if v[i] == '"' {
			i++
			for i < len(v) {
				if v[i] == '"' {
					if i+1 < len(v) && v[i+1] == '"' {
						name.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				name.WriteByte(v[i])
				i++
			}
			if name.String() != "$user" {
				out = append(out, name.String())
			}
		} else {
			for i < len(v) && v[i] != ',' {
				name.WriteByte(v[i])
				i++
			}
			n := strings.ToLower(strings.TrimSpace(name.String()))
			if n != "$user" && n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}

// TxStatus implements pgsql.Session.
func (s *session) TxStatus() byte {
	switch {
	case s.failed:
		return 'E'
	case s.inTx:
		return 'T'
	}
	return 'I'
}

// Close implements pgsql.Session: the connection is closed, never
// reused, which also ends any transaction it had open.
func (s *session) Close() error {
	for r := range s.results {
		r.Close()
	}
	if s.inTx {
		s.exec(context.Background(), "ROLLBACK")
	}
	return s.conn.Close()
}

// Abort marks an open transaction block as failed, as Postgres does when
// any statement in it fails. The router calls it for every error, also the
// ones that never reached DuckDB: a refused statement, a failed replicate()
// call, a parameter that did not decode.
func (s *session) Abort() {
	if s.inTx {
		s.rollback()
		s.failed = true
	}
}

// fail handles the error of a statement DuckDB ran, and returns it
// translated. DuckDB may have ended its transaction (a failed COMMIT does),
// kept it or invalidated it, so it is asked. An error inside a block fails
// the block, except for the statement that was ending it.
func (s *session) fail(err error, endsBlock bool) error {
	wasIn := s.inTx
	open, aerr := s.txOpen()
	if aerr != nil {
		open = wasIn
	}
	if open {
		s.rollback()
	}
	s.inTx = false
	if (open || wasIn) && !endsBlock {
		s.failed = true
	}
	return translate(err)
}

func (s *session) rollback() {
	s.closeCursors(false)
	s.exec(context.Background(), "ROLLBACK")
	s.inTx = false
}

// txOpen asks DuckDB whether conn has a transaction open. Within one, every
// statement sees the same transaction id; in autocommit each statement runs
// in a new transaction; a transaction DuckDB invalidated refuses queries.
// The function is qualified so that no macro a client created can stand in
// for it.
func (s *session) txOpen() (bool, error) {
	ctx := context.Background()
	a, err := s.queryValue(ctx, "SELECT system.main.txid_current()")
	if err != nil {
		var de *duckdb.Error
		if errors.As(err, &de) && de.Type == duckdb.ErrorTypeTransaction {
			return true, nil
		}
		return false, err
	}
	b, err := s.queryValue(ctx, "SELECT system.main.txid_current()")
	if err != nil {
		return false, err
	}
	return a == b, nil
}

// syncTx asks DuckDB after a transaction statement succeeded.
func (s *session) syncTx() {
	if open, err := s.txOpen(); err == nil {
		s.inTx = open
	}
}

// exec runs one of pgcdc's own statements.
func (s *session) exec(ctx context.Context, q string) error {
	st, err := s.conn.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.(*duckdb.Stmt).ExecContext(ctx, nil)
	return err
}

// queryValue runs one of pgcdc's own queries and returns the first column
// of its first row.
func (s *session) queryValue(ctx context.Context, q string) (driver.Value, error) {
	st, err := s.conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows, err := st.(*duckdb.Stmt).QueryContext(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(vals); err != nil {
		return nil, err
	}
	return vals[0], nil
}

// prepare has DuckDB prepare query as exactly one statement, and checks it
// against the policy, without running anything. query is what DuckDB runs:
// a client's statement has been through parsePostgres already.
func (s *session) prepare(query string) (*duckdb.Stmt, duckdb.StmtType, error) {
	lower := lowerASCII(query)
	if err := s.d.policy.checkText(query, lower); err != nil {
		return nil, 0, err
	}
	st, typ, err := s.prepareOne(query)
	if err != nil {
		return nil, 0, err
	}
	if err := s.d.policy.checkStatement(query, lower, typ, s.statementType); err != nil {
		st.Close()
		return nil, 0, err
	}
	return st, typ, nil
}

// columnTypes has DuckDB describe a relation the client names, for
// integerColumn: which of its columns are integers. This runs before the
// policy has seen the statement, so pgcdc's state schema is not described
// (the policy refuses the statement anyway), nor a name DuckDB could read
// as a file's (a replacement scan of "data.csv").
func (s *session) columnTypes(schema, name string) (map[string]bool, bool) {
	if strings.EqualFold(schema, stateSchema) || strings.ContainsAny(name, "./\\:") {
		return nil, false
	}
	rel := ident(name)
	if schema != "" {
		rel = ident(schema, name)
	}
	st, err := s.conn.Prepare("SELECT * FROM " + rel)
	if err != nil {
		return nil, false
	}
	defer st.Close()
	ds := st.(*duckdb.Stmt)
	n, err := ds.ColumnCount()
	if err != nil {
		return nil, false
	}
	cols := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		name, err := ds.ColumnName(i)
		if err != nil {
			return nil, false
		}
		t, err := ds.ColumnType(i)
		if err != nil {
			return nil, false
		}
		switch t {
		case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_INTEGER, duckdb.TYPE_BIGINT:
			cols[strings.ToLower(name)] = true
		default:
			cols[strings.ToLower(name)] = false
		}
	}
	return cols, true
}

func (s *session) prepareOne(query string) (*duckdb.Stmt, duckdb.StmtType, error) {
	st, err := s.conn.Prepare(query)
	if err != nil {
		return nil, 0, translate(err)
	}
	ds := st.(*duckdb.Stmt)
	typ, err := ds.StatementType()
	if err != nil {
		ds.Close()
		return nil, 0, translate(err)
	}
	return ds, typ, nil
}

// statementType says what kind of statement query is, for the policy's
// look inside an EXPLAIN.
func (s *session) statementType(query string) (duckdb.StmtType, error) {
	st, typ, err := s.prepareOne(query)
	if err != nil {
		return 0, err
	}
	st.Close()
	return typ, nil
}

// searchPath is the session's search_path, for putting it back.
func (s *session) searchPath(ctx context.Context) (string, error) {
	v, err := s.queryValue(ctx, "SELECT system.main.current_setting('search_path')")
	if err != nil {
		return "", err
	}
	str, _ := v.(string)
	return str, nil
}

// guardSearchPath runs after every SET: were _pgcdc on the search path,
// unqualified names (which the policy's look at the text cannot see) would
// reach pgcdc's state. A value computed at run time (SET search_path =
// concat(...), SET schema, USE) gets here too, so DuckDB's resolved list is
// checked, not the text; the previous value is put back.
func (s *session) guardSearchPath(ctx context.Context, before string) error {
	v, err := s.queryValue(ctx, "SELECT system.main.current_schemas(false)")
	if err != nil {
		return translate(err)
	}
	list, _ := v.([]any)
	for _, sch := range list {
		if name, _ := sch.(string); strings.EqualFold(name, stateSchema) {
			if err := s.exec(context.Background(), "SET search_path = "+quoteLiteral(before)); err != nil {
				// A session that cannot be put back is not used again.
				s.conn.Close()
				return fmt.Errorf("duckdb: restore search_path: %w", err)
			}
			return &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for schema " + stateSchema,
				Detail: "The search path cannot include " + stateSchema + ", which holds pgcdc's replication state.",
				Hint:   "Qualify names to read it: SELECT * FROM " + stateSchema + ".<table>."}
		}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
