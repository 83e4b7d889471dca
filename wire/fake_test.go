package wire_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/wire"
)

// fakeHandler is a tiny SQL engine whose statements exercise the protocol:
//
//	select N                   one int4 row
//	select $1::int8, $2::text  echoes its typed parameters (casts name the types)
//	types                      one row with a column of every common type
//	record                     records (literal and []any) and an unknown type
//	series N                   N int8 rows 1..N
//	echo <text>                the text itself, as a text column
//	sleep                      blocks until its context ends
//	notice N                   sends N NOTICEs, then completes
//	set NAME VALUE             sends ParameterStatus NAME VALUE
//	noticewait                 sends a NOTICE and waits for the test to see it
//	error CODE                 fails with a *pgconn.PgError of that SQLSTATE
//	fail                       fails with a plain error (XX000)
//	panic                      panics
//	insert                     no rows, tag INSERT 0 1
//	begin, commit, rollback    move the transaction status
//	whoami                     user, database, application_name
//
// Statements are split on ';'.
type fakeHandler struct {
	opened atomic.Int32
	closed atomic.Int32

	// stopped receives the context cause of every sleep that ended.
	stopped chan error
	// sleeping receives a value when a sleep starts.
	sleeping chan struct{}
	// noticeSeen is closed by the test when noticewait may finish.
	noticeSeen chan struct{}

	mu         sync.Mutex
	lastParams []any
	lastInfo   wire.SessionInfo
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{
		stopped:    make(chan error, 16),
		sleeping:   make(chan struct{}, 16),
		noticeSeen: make(chan struct{}),
	}
}

var _ wire.Handler = (*fakeHandler)(nil)

func (h *fakeHandler) NewSession(ctx context.Context, info wire.SessionInfo) (wire.SessionHandler, error) {
	if info.Database == "refuse" {
		return nil, &pgconn.PgError{Severity: "FATAL", Code: "3D000", Message: `database "refuse" does not exist`}
	}
	h.opened.Add(1)
	h.mu.Lock()
	h.lastInfo = info
	h.mu.Unlock()
	return &fakeSession{h: h, info: info, tx: 'I'}, nil
}

func (h *fakeHandler) params() []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastParams
}

func (h *fakeHandler) info() wire.SessionInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastInfo
}

// waitClosed waits until every opened session was closed.
func (h *fakeHandler) waitClosed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.closed.Load() != h.opened.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("sessions opened %d, closed %d", h.opened.Load(), h.closed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fakeSession struct {
	h    *fakeHandler
	info wire.SessionInfo
	tx   byte
}

var _ wire.SessionHandler = (*fakeSession)(nil)

func (s *fakeSession) TxStatus() byte { return s.tx }

func (s *fakeSession) Failed(error) {
	if s.tx == 'T' {
		s.tx = 'E'
	}
}

func (s *fakeSession) Close() error {
	s.h.closed.Add(1)
	return nil
}

func (s *fakeSession) Parse(ctx context.Context, query string, paramOIDs []uint32) ([]wire.Statement, error) {
	var out []wire.Statement
	for part := range strings.SplitSeq(query, ";") {
		q := strings.TrimSpace(part)
		if q == "" {
			continue
		}
		st, err := s.prepare(q, paramOIDs)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

var (
	selectN   = regexp.MustCompile(`(?i)^select (-?\d+)$`)
	paramCast = regexp.MustCompile(`\$(\d+)::([a-z0-9_]+(\[\])?)`)
	typeOIDs  = map[string]uint32{
		"int2": pgtype.Int2OID, "int4": pgtype.Int4OID, "int8": pgtype.Int8OID,
		"float4": pgtype.Float4OID, "float8": pgtype.Float8OID, "numeric": pgtype.NumericOID,
		"bool": pgtype.BoolOID, "text": pgtype.TextOID, "varchar": pgtype.VarcharOID,
		"bytea": pgtype.ByteaOID, "date": pgtype.DateOID, "timestamp": pgtype.TimestampOID,
		"timestamptz": pgtype.TimestamptzOID, "json": pgtype.JSONOID, "jsonb": pgtype.JSONBOID,
		"uuid": pgtype.UUIDOID, "text[]": pgtype.TextArrayOID, "int8[]": pgtype.Int8ArrayOID,
		"int4[]": pgtype.Int4ArrayOID,
	}
)

// typesRow is what the "types" statement returns.
var (
	typesColumns = []wire.Column{
		{Name: "i8", OID: pgtype.Int8OID},
		{Name: "i4", OID: pgtype.Int4OID},
		{Name: "i2", OID: pgtype.Int2OID},
		{Name: "f8", OID: pgtype.Float8OID},
		{Name: "f4", OID: pgtype.Float4OID},
		{Name: "b", OID: pgtype.BoolOID},
		{Name: "ts", OID: pgtype.TimestamptzOID},
		{Name: "t", OID: pgtype.TextOID},
		{Name: "by", OID: pgtype.ByteaOID},
		{Name: "n", OID: pgtype.NumericOID},
		{Name: "ns", OID: pgtype.NumericOID},
		{Name: "d", OID: pgtype.DateOID},
		{Name: "j", OID: pgtype.JSONBOID},
		{Name: "u", OID: pgtype.UUIDOID},
		{Name: "arr", OID: pgtype.TextArrayOID},
		{Name: "nul", OID: pgtype.TextOID},
		{Name: "i8s", OID: pgtype.Int8OID},
		{Name: "empty", OID: pgtype.TextOID},
	}
	typesTime = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	typesRow  = []any{
		int64(9007199254740993), int64(-7), int64(3), 3.25, float64(1.5), true, typesTime, "héllo",
		[]byte{0, 1, 2, 255}, int64(12345), "3.14159", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC),
		`{"a": 1}`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", []string{"x", "y z"}, nil, "42", "",
	}
)

func (s *fakeSession) prepare(q string, paramOIDs []uint32) (wire.Statement, error) {
	lower := strings.ToLower(q)
	word, rest, _ := strings.Cut(lower, " ")
	switch {
	case selectN.MatchString(q):
		n, _ := strconv.ParseInt(selectN.FindStringSubmatch(q)[1], 10, 64)
		return rows([]wire.Column{{Name: "?column?", OID: pgtype.Int4OID}}, "SELECT 1", []any{n}), nil
	case strings.HasPrefix(lower, "select ") && paramCast.MatchString(q):
		return s.echoParams(q, paramOIDs)
	case strings.HasPrefix(lower, "copy "):
		return s.copyStatement(lower)
	case lower == "types":
		return rows(typesColumns, "SELECT 1", typesRow), nil
	case lower == "record":
		return rows([]wire.Column{{Name: "rec", OID: pgtype.RecordOID}, {Name: "unk", OID: 99999}, {Name: "fields", OID: pgtype.RecordOID}},
			"SELECT 1", []any{`(1,"x y",)`, int64(5), []any{int64(1), "a b", nil, true}}), nil
	case word == "series":
		n, err := strconv.Atoi(rest)
		if err != nil {
			return nil, syntaxError(q)
		}
		var rs [][]any
		for i := 1; i <= n; i++ {
			rs = append(rs, []any{int64(i)})
		}
		return &fakeStatement{cols: []wire.Column{{Name: "n", OID: pgtype.Int8OID}}, exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			return &sliceResult{rows: rs, tag: fmt.Sprintf("SELECT %d", n)}, nil
		}}, nil
	case word == "echo":
		return rows([]wire.Column{{Name: "echo", OID: pgtype.TextOID}}, "SELECT 1", []any{q[len("echo "):]}), nil
	case lower == "sleep":
		return &fakeStatement{exec: func(ctx context.Context, _ []any, _ wire.Notifier) (wire.Result, error) {
			s.h.sleeping <- struct{}{}
			<-ctx.Done()
			s.h.stopped <- context.Cause(ctx)
			return nil, ctx.Err()
		}}, nil
	case word == "notice":
		n, err := strconv.Atoi(rest)
		if err != nil {
			return nil, syntaxError(q)
		}
		return &fakeStatement{exec: func(_ context.Context, _ []any, nt wire.Notifier) (wire.Result, error) {
			for i := 1; i <= n; i++ {
				nt.Notice("NOTICE", fmt.Sprintf("notice %d", i))
			}
			nt.Notice("WARNING", "careful")
			return &sliceResult{tag: "DO"}, nil
		}}, nil
	case word == "set":
		name, value, _ := strings.Cut(q[len("set "):], " ")
		return &fakeStatement{exec: func(_ context.Context, _ []any, nt wire.Notifier) (wire.Result, error) {
			nt.ParameterStatus(name, value)
			return &sliceResult{tag: "SET"}, nil
		}}, nil
	case lower == "noticewait":
		return &fakeStatement{exec: func(ctx context.Context, _ []any, nt wire.Notifier) (wire.Result, error) {
			// Notify from another goroutine, as a progress reporter would.
			go nt.Notice("NOTICE", "working")
			select {
			case <-s.h.noticeSeen:
				return &sliceResult{tag: "DO"}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}, nil
	case word == "error":
		code := strings.ToUpper(rest)
		return &fakeStatement{exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			return nil, fmt.Errorf("fake: %w", &pgconn.PgError{Code: code, Message: "fake error " + code, Detail: "some detail", Hint: "some hint", Position: 3})
		}}, nil
	case lower == "fail":
		return &fakeStatement{exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			return nil, errors.New("plain failure")
		}}, nil
	case lower == "panic":
		return &fakeStatement{exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			panic("boom")
		}}, nil
	case lower == "insert":
		return &fakeStatement{exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			return &sliceResult{tag: "INSERT 0 1"}, nil
		}}, nil
	case lower == "begin", lower == "commit", lower == "rollback":
		return &fakeStatement{exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
			if lower == "begin" {
				s.tx = 'T'
			} else {
				s.tx = 'I'
			}
			return &sliceResult{tag: strings.ToUpper(lower)}, nil
		}}, nil
	case lower == "whoami":
		return rows([]wire.Column{{Name: "user"}, {Name: "database"}, {Name: "application_name"}}, "SELECT 1",
			[]any{s.info.User, s.info.Database, s.info.Application}), nil
	}
	if s.tx == 'T' {
		s.tx = 'E'
	}
	return nil, syntaxError(q)
}

func syntaxError(q string) error {
	return &pgconn.PgError{Code: "42601", Message: fmt.Sprintf("syntax error at or near %q", q), Position: 1}
}

func (s *fakeSession) echoParams(q string, declared []uint32) (wire.Statement, error) {
	matches := paramCast.FindAllStringSubmatch(q, -1)
	oids := make([]uint32, len(matches))
	cols := make([]wire.Column, len(matches))
	for i, m := range matches {
		n, _ := strconv.Atoi(m[1])
		if n != i+1 {
			return nil, syntaxError(q)
		}
		oid, ok := typeOIDs[m[2]]
		if !ok {
			return nil, &pgconn.PgError{Code: "42704", Message: fmt.Sprintf("type %q does not exist", m[2])}
		}
		if i < len(declared) && declared[i] != 0 {
			oid = declared[i]
		}
		oids[i] = oid
		cols[i] = wire.Column{Name: fmt.Sprintf("p%d", n), OID: oid}
	}
	return &fakeStatement{params: oids, cols: cols, exec: func(_ context.Context, params []any, _ wire.Notifier) (wire.Result, error) {
		s.h.mu.Lock()
		s.h.lastParams = params
		s.h.mu.Unlock()
		return &sliceResult{rows: [][]any{params}, tag: "SELECT 1"}, nil
	}}, nil
}

func rows(cols []wire.Column, tag string, row []any) *fakeStatement {
	return &fakeStatement{cols: cols, exec: func(context.Context, []any, wire.Notifier) (wire.Result, error) {
		return &sliceResult{rows: [][]any{row}, tag: tag}, nil
	}}
}

type fakeStatement struct {
	params []uint32
	cols   []wire.Column
	exec   func(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error)
}

var _ wire.Statement = (*fakeStatement)(nil)

func (st *fakeStatement) ParamOIDs() []uint32    { return st.params }
func (st *fakeStatement) Columns() []wire.Column { return st.cols }
func (st *fakeStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	return st.exec(ctx, params, n)
}

type sliceResult struct {
	rows [][]any
	tag  string
}

var _ wire.Result = (*sliceResult)(nil)

func (r *sliceResult) Next(ctx context.Context) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(r.rows) == 0 {
		return nil, io.EOF
	}
	row := r.rows[0]
	r.rows = r.rows[1:]
	return row, nil
}
func (r *sliceResult) Tag() string  { return r.tag }
func (r *sliceResult) Close() error { return nil }

// testServer is a running Server on a loopback port.
type testServer struct {
	srv   *wire.Server
	h     *fakeHandler
	addr  string // host:port
	host  string
	port  string
	serve chan error

	serveOnce sync.Once
	serveErr  error
	served    bool
}

// waitServe returns what Serve returned, waiting up to d.
func (ts *testServer) waitServe(d time.Duration) (returned bool, err error) {
	ts.serveOnce.Do(func() {
		select {
		case ts.serveErr = <-ts.serve:
			ts.served = true
		case <-time.After(d):
		}
	})
	return ts.served, ts.serveErr
}

func testLogger(t *testing.T) zerolog.Logger {
	level := zerolog.WarnLevel
	if l, err := zerolog.ParseLevel(os.Getenv("WIRE_TEST_LOG")); err == nil && os.Getenv("WIRE_TEST_LOG") != "" {
		level = l
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(level).With().Timestamp().Logger()
}

func startServer(t *testing.T, cfg wire.Config) *testServer {
	t.Helper()
	return startServerLog(t, cfg, testLogger(t))
}

func startServerLog(t *testing.T, cfg wire.Config, log zerolog.Logger) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{h: newFakeHandler(), addr: ln.Addr().String(), serve: make(chan error, 1)}
	ts.host, ts.port, _ = net.SplitHostPort(ts.addr)
	ts.srv = wire.NewServer(cfg, ts.h, log)
	go func() { ts.serve <- ts.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if ok, err := ts.waitServe(5 * time.Second); !ok {
			t.Error("Serve did not return after Shutdown")
		} else if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.h.waitClosed(t)
	})
	return ts
}

// connString is a pgx/libpq URL for user alice; params defaults to
// sslmode=disable.
func (ts *testServer) connString(password string, params string) string {
	auth := "alice"
	if password != "" {
		auth += ":" + password
	}
	if params == "" {
		params = "sslmode=disable"
	}
	return fmt.Sprintf("postgres://%s@%s/appdb?connect_timeout=5&%s", auth, ts.addr, params)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
