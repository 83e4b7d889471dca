package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgcdc/pgcdc/replicator"
)

// OpenSession implements replicator.Passthrough: one DuckDB connection per
// client session, so that a client's BEGIN ... COMMIT is its own.
func (d *Destination) OpenSession(ctx context.Context) (replicator.Session, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	// Postgres users write orders for public.orders; DuckDB's default
	// schema is main.
	if _, err := conn.ExecContext(ctx, "SET search_path = 'public,main'"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	return &session{conn: conn, status: 'I'}, nil
}

type session struct {
	conn   *sql.Conn
	status byte
}

func (s *session) TxStatus() byte { return s.status }

func (s *session) Close() error {
	if s.status != 'I' {
		s.conn.ExecContext(context.Background(), "ROLLBACK")
	}
	return s.conn.Close()
}

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
	query  string
	kind   stmtKind
	tag    string // command tag verb(s), e.g. "INSERT", "CREATE TABLE"
	fields []replicator.Field
	types  []duckdb.Type
	params []uint32
}

// Prepare describes a statement with DuckDB's prepared-statement API, then
// releases it; Query runs the text again. That keeps no DuckDB statement
// alive per client statement, which simple-query clients never close.
func (s *session) Prepare(ctx context.Context, query string) (replicator.Prepared, error) {
	p := &prepared{s: s, query: query, tag: commandVerb(query)}
	switch p.tag {
	case "BEGIN", "START TRANSACTION":
		p.kind, p.tag = kindBegin, "BEGIN"
		return p, nil
	case "COMMIT", "END":
		p.kind, p.tag = kindCommit, "COMMIT"
		return p, nil
	case "ROLLBACK", "ABORT":
		p.kind, p.tag = kindRollback, "ROLLBACK"
		return p, nil
	}
	if s.status == 'E' {
		return nil, errAborted
	}
	err := s.conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer st.Close()
		ds := st.(*duckdb.Stmt)
		typ, err := ds.StatementType()
		if err != nil {
			return err
		}
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
			p.fields = append(p.fields, replicator.Field{Name: name, OID: oid, Size: size, TypeMod: -1})
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
		case duckdb.STATEMENT_TYPE_SELECT, duckdb.STATEMENT_TYPE_EXPLAIN, duckdb.STATEMENT_TYPE_PRAGMA, duckdb.STATEMENT_TYPE_CALL:
			p.kind = kindRows
			if p.tag != "SHOW" && p.tag != "EXPLAIN" && p.tag != "VALUES" && p.tag != "TABLE" && p.tag != "WITH" && p.tag != "DESCRIBE" {
				p.tag = "SELECT"
			}
		case duckdb.STATEMENT_TYPE_INSERT, duckdb.STATEMENT_TYPE_UPDATE, duckdb.STATEMENT_TYPE_DELETE:
			p.kind = kindRows // with RETURNING
			if n == 1 && p.fields[0].Name == "Count" {
				p.kind, p.fields = kindCount, nil
			}
		default:
			p.kind, p.fields = kindOther, nil
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(translate(err))
	}
	return p, nil
}

var errAborted = &pgconn.PgError{Severity: "ERROR", Code: "25P02",
	Message: "current transaction is aborted, commands ignored until end of transaction block"}

// fail records that a statement failed: inside a transaction block the
// block is now aborted, as in Postgres.
func (s *session) fail(err error) error {
	if s.status == 'T' {
		s.status = 'E'
	}
	return err
}

// Abort marks an open transaction block as failed, as Postgres does when
// any statement in it fails. The router calls it for errors that never
// reached DuckDB: a failed replicate() call, a parameter that did not decode.
func (s *session) Abort() {
	s.fail(nil)
}

func (p *prepared) ParamOIDs() []uint32        { return p.params }
func (p *prepared) Fields() []replicator.Field { return p.fields }
func (p *prepared) Close() error               { return nil }
func (p *prepared) transaction(ctx context.Context) (replicator.Rows, error) {
	s := p.s
	switch p.kind {
	case kindBegin:
		if s.status != 'I' {
			// Postgres warns and carries on; so do we.
			return &tagRows{tag: "BEGIN"}, nil
		}
		if _, err := s.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
			return nil, translate(err)
		}
		s.status = 'T'
		return &tagRows{tag: "BEGIN"}, nil
	case kindCommit:
		if s.status == 'I' {
			return &tagRows{tag: "COMMIT"}, nil
		}
		verb, tag := "COMMIT", "COMMIT"
		if s.status == 'E' {
			verb, tag = "ROLLBACK", "ROLLBACK" // Postgres reports ROLLBACK for a failed block
		}
		_, err := s.conn.ExecContext(ctx, verb)
		s.status = 'I'
		if err != nil {
			s.conn.ExecContext(context.Background(), "ROLLBACK")
			return nil, translate(err)
		}
		return &tagRows{tag: tag}, nil
	default: // rollback
		if s.status != 'I' {
			s.conn.ExecContext(ctx, "ROLLBACK")
		}
		s.status = 'I'
		return &tagRows{tag: "ROLLBACK"}, nil
	}
}

func (p *prepared) Query(ctx context.Context, args []any) (replicator.Rows, error) {
	switch p.kind {
	case kindBegin, kindCommit, kindRollback:
		return p.transaction(ctx)
	}
	if p.s.status == 'E' {
		return nil, errAborted
	}
	rows, err := p.s.conn.QueryContext(ctx, p.query, args...)
	if err != nil {
		return nil, p.s.fail(translate(err))
	}
	switch p.kind {
	case kindCount:
		var n int64
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, p.s.fail(translate(err))
			}
		}
		if err := rows.Close(); err != nil {
			return nil, p.s.fail(translate(err))
		}
		if p.tag == "INSERT" {
			return &tagRows{tag: fmt.Sprintf("INSERT 0 %d", n)}, nil
		}
		return &tagRows{tag: fmt.Sprintf("%s %d", p.tag, n)}, nil
	case kindOther:
		for rows.Next() {
		}
		err := rows.Close()
		if err != nil {
			return nil, p.s.fail(translate(err))
		}
		return &tagRows{tag: p.tag}, nil
	}
	return &resultRows{p: p, rows: rows, vals: make([]any, len(p.fields))}, nil
}

type tagRows struct{ tag string }

func (t *tagRows) Next(context.Context) ([]any, error) { return nil, io.EOF }
func (t *tagRows) Tag() string                         { return t.tag }
func (t *tagRows) Close() error                        { return nil }

type resultRows struct {
	p    *prepared
	rows *sql.Rows
	vals []any
	n    int64
	done bool
}

func (r *resultRows) Next(ctx context.Context) ([]any, error) {
	if r.done {
		return nil, io.EOF
	}
	if !r.rows.Next() {
		r.done = true
		if err := r.rows.Err(); err != nil {
			return nil, r.p.s.fail(translate(err))
		}
		return nil, io.EOF
	}
	ptrs := make([]any, len(r.vals))
	for i := range r.vals {
		ptrs[i] = &r.vals[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		return nil, r.p.s.fail(translate(err))
	}
	out := make([]any, len(r.vals))
	for i, v := range r.vals {
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
	case "UPDATE", "DELETE":
		return fmt.Sprintf("%s %d", r.p.tag, r.n)
	}
	return fmt.Sprintf("SELECT %d", r.n)
}

func (r *resultRows) Close() error { return r.rows.Close() }

// commandVerb derives the command tag from the statement text, as Postgres
// does: "CREATE TABLE", "DROP SCHEMA", "SET", "INSERT", ...
func commandVerb(q string) string {
	words := strings.Fields(strings.ToUpper(stripComments(q)))
	if len(words) == 0 {
		return ""
	}
	w0 := strings.TrimRight(words[0], ";")
	switch w0 {
	case "CREATE", "DROP", "ALTER":
		for _, w := range words[1:] {
			switch w {
			case "OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "IF", "NOT", "EXISTS", "PERSISTENT":
				continue
			}
			return w0 + " " + strings.TrimRight(w, ";")
		}
	case "START":
		return "START TRANSACTION"
	}
	return w0
}

// stripComments removes leading -- and /* */ comments.
func stripComments(q string) string {
	for {
		q = strings.TrimSpace(q)
		switch {
		case strings.HasPrefix(q, "--"):
			if i := strings.IndexByte(q, '\n'); i >= 0 {
				q = q[i+1:]
				continue
			}
			return ""
		case strings.HasPrefix(q, "/*"):
			if i := strings.Index(q, "*/"); i >= 0 {
				q = q[i+2:]
				continue
			}
			return ""
		}
		return q
	}
}

// translate gives DuckDB errors a SQLSTATE a Postgres client understands.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	code := "XX000"
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeParser:
			code = "42601"
		case duckdb.ErrorTypeCatalog:
			code = "42P01"
			if strings.Contains(de.Msg, "Column") || strings.Contains(de.Msg, "column") {
				code = "42703"
			}
		case duckdb.ErrorTypeBinder:
			code = "42703"
			if strings.Contains(de.Msg, "Table") || strings.Contains(de.Msg, "table") {
				code = "42P01"
			}
		case duckdb.ErrorTypeConversion, duckdb.ErrorTypeInvalidInput:
			code = "22P02"
		case duckdb.ErrorTypeDivideByZero:
			code = "22012"
		case duckdb.ErrorTypeOutOfRange:
			code = "22003"
		case duckdb.ErrorTypeConstraint:
			code = "23000"
		case duckdb.ErrorTypeTransaction:
			code = "40001"
		case duckdb.ErrorTypeInterrupt:
			code = "57014"
		case duckdb.ErrorTypeNotImplemented:
			code = "0A000"
		case duckdb.ErrorTypePermission:
			code = "42501"
		}
	}
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: err.Error()}
}

// pgType maps a DuckDB result type to the Postgres type clients are told.
func pgType(info duckdb.TypeInfo) (uint32, int16) {
	return pgTypeOf(info.InternalType())
}

func pgTypeOf(t duckdb.Type) (uint32, int16) {
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return pgtype.BoolOID, 1
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		return pgtype.Int2OID, 2
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		return pgtype.Int4OID, 4
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		return pgtype.Int8OID, 8
	case duckdb.TYPE_UBIGINT, duckdb.TYPE_HUGEINT, duckdb.TYPE_UHUGEINT, duckdb.TYPE_DECIMAL, duckdb.TYPE_BIGNUM:
		return pgtype.NumericOID, -1
	case duckdb.TYPE_FLOAT:
		return pgtype.Float4OID, 4
	case duckdb.TYPE_DOUBLE:
		return pgtype.Float8OID, 8
	case duckdb.TYPE_DATE:
		return pgtype.DateOID, 4
	case duckdb.TYPE_TIME:
		return pgtype.TimeOID, 8
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		return pgtype.TimestampOID, 8
	case duckdb.TYPE_TIMESTAMP_TZ:
		return pgtype.TimestamptzOID, 8
	case duckdb.TYPE_INTERVAL:
		return pgtype.IntervalOID, 16
	case duckdb.TYPE_BLOB:
		return pgtype.ByteaOID, -1
	case duckdb.TYPE_UUID:
		return pgtype.UUIDOID, 16
	}
	return pgtype.TextOID, -1
}

// pgValue converts a scanned DuckDB value to the Go value pgtype encodes
// for the Postgres type pgTypeOf chose.
func pgValue(t duckdb.Type, v any) any {
	if v == nil {
		return nil
	}
	switch x := v.(type) {
	case int8:
		return int16(x)
	case uint8:
		return int16(x)
	case uint16:
		return int32(x)
	case uint32:
		return int64(x)
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}
	case *big.Int:
		return pgtype.Numeric{Int: x, Valid: true}
	case duckdb.Decimal:
		return pgtype.Numeric{Int: x.Value, Exp: -int32(x.Scale), Valid: true}
	case duckdb.Interval:
		return pgtype.Interval{Months: x.Months, Days: x.Days, Microseconds: x.Micros, Valid: true}
	case time.Time:
		switch t {
		case duckdb.TYPE_TIME:
			return pgtype.Time{Microseconds: int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond())/1e3, Valid: true}
		case duckdb.TYPE_TIME_TZ:
			return x.Format("15:04:05.999999-07:00")
		}
		return x
	case []byte:
		if t == duckdb.TYPE_UUID && len(x) == 16 {
			var u [16]byte
			copy(u[:], x)
			return pgtype.UUID{Bytes: u, Valid: true}
		}
		if t == duckdb.TYPE_BLOB {
			return x
		}
		return string(x)
	case duckdb.UUID:
		return pgtype.UUID{Bytes: x, Valid: true}
	case string, int16, int32, int64, float32, float64, bool:
		return x
	}
	// Nested and other types go out as text; JSON is the closest widely
	// readable form for lists, structs and maps.
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
