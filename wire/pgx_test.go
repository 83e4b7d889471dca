package wire_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/internal/testcert"
	"github.com/pgcdc/pgcdc/wire"
)

func connect(t *testing.T, ctx context.Context, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func wantPgError(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want PgError %s, got %v", code, err)
	}
	if pe.Code != code {
		t.Fatalf("want SQLSTATE %s, got %s: %s", code, pe.Code, pe.Message)
	}
	return pe
}

func selectOne(t *testing.T, ctx context.Context, conn *pgx.Conn) {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, "select 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("select 1: %d, %v", n, err)
	}
}

func TestPgxTrust(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", "sslmode=disable&application_name=wiretest&search_path=myschema"))
	selectOne(t, ctx, conn)

	pc := conn.PgConn()
	for name, want := range map[string]string{
		"server_version":              "16.0",
		"server_encoding":             "UTF8",
		"client_encoding":             "UTF8",
		"DateStyle":                   "ISO, MDY",
		"integer_datetimes":           "on",
		"standard_conforming_strings": "on",
		"TimeZone":                    "UTC",
		"IntervalStyle":               "postgres",
		"is_superuser":                "off",
		"session_authorization":       "alice",
		"application_name":            "wiretest",
		"in_hot_standby":              "off",
	} {
		if got := pc.ParameterStatus(name); got != want {
			t.Errorf("ParameterStatus(%s) = %q, want %q", name, got, want)
		}
	}
	if pc.PID() == 0 || len(pc.SecretKey()) != 4 {
		t.Errorf("BackendKeyData: pid %d, secret %x", pc.PID(), pc.SecretKey())
	}

	info := ts.h.info()
	if info.User != "alice" || info.Database != "appdb" || info.Application != "wiretest" {
		t.Errorf("SessionInfo = %+v", info)
	}
	if info.Parameters["search_path"] != "myschema" {
		t.Errorf("startup parameter search_path = %q", info.Parameters["search_path"])
	}
	if !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") {
		t.Errorf("RemoteAddr = %q", info.RemoteAddr)
	}

	var user, db, app string
	if err := conn.QueryRow(ctx, "whoami").Scan(&user, &db, &app); err != nil {
		t.Fatal(err)
	}
	if user != "alice" || db != "appdb" || app != "wiretest" {
		t.Errorf("whoami = %s %s %s", user, db, app)
	}
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPgxSCRAM(t *testing.T) {
	ctx := testContext(t)
	logs := &syncBuffer{}
	ts := startServerLog(t, wire.Config{Password: "s3cret pw"}, zerolog.New(logs).Level(zerolog.DebugLevel))

	t.Run("right password", func(t *testing.T) {
		conn := connect(t, ctx, ts.connString("s3cret%20pw", ""))
		selectOne(t, ctx, conn)
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := pgx.Connect(ctx, ts.connString("hunter2", ""))
		pe := wantPgError(t, err, "28P01")
		if pe.Severity != "FATAL" || pe.Message != `password authentication failed for user "alice"` {
			t.Errorf("got %s %q", pe.Severity, pe.Message)
		}
	})
	t.Run("no password", func(t *testing.T) {
		_, err := pgx.Connect(ctx, ts.connString("", ""))
		if err == nil {
			t.Fatal("connected without a password")
		}
	})
	if out := logs.String(); !strings.Contains(out, "password authentication failed") {
		t.Errorf("failed authentication not logged: %s", out)
	} else if strings.Contains(out, "hunter2") || strings.Contains(out, "s3cret") {
		t.Errorf("log contains a password: %s", out)
	}
}

func TestPgxExtendedParams(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))

	ts1 := time.Date(2023, 1, 2, 3, 4, 5, 678000000, time.UTC)
	day := time.Date(2023, 4, 5, 0, 0, 0, 0, time.UTC)
	const uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	var (
		i8   int64
		txt  string
		b    bool
		f8   float64
		tsz  time.Time
		by   []byte
		num  pgtype.Numeric
		arr  []string
		i4   int32
		js   map[string]any
		u    string
		d    time.Time
		null *int64
	)
	err := conn.QueryRow(ctx,
		"select $1::int8, $2::text, $3::bool, $4::float8, $5::timestamptz, $6::bytea, $7::numeric, $8::text[], $9::int4, $10::jsonb, $11::uuid, $12::date, $13::int8",
		int64(-42), "hé'llo", true, 2.5, ts1, []byte{0, 1, 254}, "123.45", []string{"a", "b c"}, int32(7), map[string]any{"k": "v"}, uuid, day, nil,
	).Scan(&i8, &txt, &b, &f8, &tsz, &by, &num, &arr, &i4, &js, &u, &d, &null)
	if err != nil {
		t.Fatal(err)
	}
	numText, _ := num.Value()
	if i8 != -42 || txt != "hé'llo" || !b || f8 != 2.5 || !tsz.Equal(ts1) || !bytes.Equal(by, []byte{0, 1, 254}) ||
		numText != "123.45" || !reflect.DeepEqual(arr, []string{"a", "b c"}) || i4 != 7 || js["k"] != "v" || u != uuid ||
		!d.Equal(day) || null != nil {
		t.Errorf("round trip: %v %q %v %v %v %x %v %q %v %v %v %v %v", i8, txt, b, f8, tsz, by, numText, arr, i4, js, u, d, null)
	}

	// What the handler saw: the documented DecodeParam types.
	got := ts.h.params()
	want := []any{int64(-42), "hé'llo", true, 2.5, ts1, []byte{0, 1, 254}, "123.45", []string{"a", "b c"}, int64(7), `{"k":"v"}`, uuid, day, nil}
	if len(got) != len(want) {
		t.Fatalf("handler params %#v", got)
	}
	for i := range want {
		if tm, ok := want[i].(time.Time); ok {
			if g, ok := got[i].(time.Time); !ok || !g.Equal(tm) {
				t.Errorf("param $%d = %#v, want %v", i+1, got[i], tm)
			}
			continue
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("param $%d = %#v (%T), want %#v (%T)", i+1, got[i], got[i], want[i], want[i])
		}
	}
}

// scanTypes reads the "types" row; pgx asks for binary results in its
// default mode and gets text in the simple protocol.
func scanTypes(t *testing.T, ctx context.Context, conn *pgx.Conn, args ...any) {
	t.Helper()
	var (
		i8, i8s int64
		i4      int32
		i2      int16
		f8      float64
		f4      float32
		b       bool
		ts      time.Time
		txt     string
		by      []byte
		n, ns   pgtype.Numeric
		d       time.Time
		j       map[string]any
		u       string
		arr     []string
		nul     *string
		empty   *string
	)
	err := conn.QueryRow(ctx, "types", args...).Scan(&i8, &i4, &i2, &f8, &f4, &b, &ts, &txt, &by, &n, &ns, &d, &j, &u, &arr, &nul, &i8s, &empty)
	if err != nil {
		t.Fatal(err)
	}
	nv, _ := n.Value()
	nsv, _ := ns.Value()
	if i8 != 9007199254740993 || i4 != -7 || i2 != 3 || f8 != 3.25 || f4 != 1.5 || !b || !ts.Equal(typesTime) ||
		txt != "héllo" || !bytes.Equal(by, []byte{0, 1, 2, 255}) || nv != "12345" || nsv != "3.14159" ||
		!d.Equal(time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)) || j["a"] != float64(1) ||
		u != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" || !reflect.DeepEqual(arr, []string{"x", "y z"}) || nul != nil ||
		i8s != 42 || empty == nil || *empty != "" {
		t.Errorf("types row: %v %v %v %v %v %v %v %q %x %v %v %v %v %v %q %v %v %v",
			i8, i4, i2, f8, f4, b, ts, txt, by, nv, nsv, d, j, u, arr, nul, i8s, empty)
	}
}

func TestPgxResultTypes(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))
	t.Run("binary", func(t *testing.T) { scanTypes(t, ctx, conn) })
	t.Run("text", func(t *testing.T) { scanTypes(t, ctx, conn, pgx.QueryExecModeSimpleProtocol) })
	t.Run("describe exec", func(t *testing.T) { scanTypes(t, ctx, conn, pgx.QueryExecModeDescribeExec) })
}

func TestPgxSimpleProtocol(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", "sslmode=disable&default_query_exec_mode=simple_protocol"))

	selectOne(t, ctx, conn)
	// pgx interpolates parameters itself in this mode.
	var echoed string
	if err := conn.QueryRow(ctx, "echo $1", "it's").Scan(&echoed); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(echoed) != "'it''s'" {
		t.Errorf("echo = %q", echoed)
	}

	results, err := conn.PgConn().Exec(ctx, "select 1; series 2; insert").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, r := range results {
		tags = append(tags, r.CommandTag.String())
	}
	if strings.Join(tags, "|") != "SELECT 1|SELECT 2|INSERT 0 1" || len(results[1].Rows) != 2 {
		t.Errorf("multi-statement results: %v, rows %v", tags, results[1].Rows)
	}
	if _, err := conn.Exec(ctx, ""); err != nil {
		t.Errorf("empty query: %v", err)
	}
}

func TestPgxBatch(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))

	b := &pgx.Batch{}
	b.Queue("select 1")
	b.Queue("series 3")
	b.Queue("select $1::int8, $2::text", int64(5), "five")
	b.Queue("insert")
	br := conn.SendBatch(ctx, b)
	var one int
	if err := br.QueryRow().Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1: %v %v", one, err)
	}
	rows, _ := br.Query()
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || !reflect.DeepEqual(ns, []int64{1, 2, 3}) {
		t.Fatalf("series: %v %v", ns, err)
	}
	var five int64
	var word string
	if err := br.QueryRow().Scan(&five, &word); err != nil || five != 5 || word != "five" {
		t.Fatalf("params: %v %v %v", five, word, err)
	}
	tag, err := br.Exec()
	if err != nil || tag.String() != "INSERT 0 1" {
		t.Fatalf("insert: %v %v", tag, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}

	// An error fails the rest of the pipeline up to its Sync, and only that.
	b = &pgx.Batch{}
	b.Queue("select 1")
	b.Queue("error 22012")
	b.Queue("select 2")
	br = conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatalf("first: %v", err)
	}
	_, err = br.Exec()
	wantPgError(t, err, "22012")
	if _, err := br.Exec(); err == nil {
		t.Error("statement after the error ran")
	}
	br.Close()
	selectOne(t, ctx, conn)
}

func TestPgxErrors(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))

	_, err := conn.Exec(ctx, "error 23505")
	pe := wantPgError(t, err, "23505")
	if pe.Severity != "ERROR" || pe.Message != "fake error 23505" || pe.Detail != "some detail" || pe.Hint != "some hint" || pe.Position != 3 {
		t.Errorf("PgError fields: %+v", pe)
	}
	selectOne(t, ctx, conn)

	// Extended protocol.
	var n int64
	err = conn.QueryRow(ctx, "error 22012").Scan(&n)
	wantPgError(t, err, "22012")
	selectOne(t, ctx, conn)

	_, err = conn.Exec(ctx, "fail")
	if pe := wantPgError(t, err, "XX000"); pe.Message != "plain failure" {
		t.Errorf("message %q", pe.Message)
	}
	err = conn.QueryRow(ctx, "select $1::int4", pgx.QueryExecModeExec, "not a number").Scan(&n)
	wantPgError(t, err, "22P02")
	selectOne(t, ctx, conn)

	_, err = pgx.Connect(ctx, strings.Replace(ts.connString("", ""), "/appdb?", "/refuse?", 1))
	wantPgError(t, err, "3D000")
}

func cancelRequestConfig(t *testing.T, connString string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
	}
	return cfg
}

func TestPgxCancel(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn, err := pgx.ConnectConfig(ctx, cancelRequestConfig(t, ts.connString("", "")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			qctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				<-ts.h.sleeping
				cancel()
			}()
			rows, _ := conn.Query(qctx, "sleep", mode)
			rows.Close()
			wantPgError(t, rows.Err(), "57014")
			select {
			case <-ts.h.stopped:
			case <-ctx.Done():
				t.Fatal("statement context was not cancelled")
			}
			selectOne(t, ctx, conn)
		})
	}

	t.Run("explicit CancelRequest", func(t *testing.T) {
		go func() {
			<-ts.h.sleeping
			if err := conn.PgConn().CancelRequest(ctx); err != nil {
				t.Errorf("CancelRequest: %v", err)
			}
		}()
		_, err := conn.Exec(context.Background(), "sleep")
		if pe := wantPgError(t, err, "57014"); pe.Message != "canceling statement due to user request" {
			t.Errorf("message %q", pe.Message)
		}
		<-ts.h.stopped
		selectOne(t, ctx, conn)
	})

	t.Run("wrong secret is ignored", func(t *testing.T) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		buf, _ := (&pgproto3.CancelRequest{ProcessID: conn.PgConn().PID(), SecretKey: []byte{1, 2, 3, 4}}).Encode(nil)
		c.Write(buf)
		c.Close()
		selectOne(t, ctx, conn)
	})
}

// A client that hangs up mid-statement cancels the statement: pgx's default
// context handling closes the socket rather than sending a CancelRequest.
func TestPgxDisconnectCancelsStatement(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := conn.Exec(qctx, "sleep"); err == nil {
		t.Fatal("sleep returned")
	}
	select {
	case <-ts.h.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("statement kept running after the client hung up")
	}
	ts.h.waitClosed(t)
}

func TestPgxNotice(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	cfg, err := pgconn.ParseConfig(ts.connString("", ""))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	var once sync.Once
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Severity+" "+n.Code+" "+n.Message)
		mu.Unlock()
		if n.Message == "working" {
			once.Do(func() { close(ts.h.noticeSeen) })
		}
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)

	if _, err := pc.Exec(ctx, "notice 2").ReadAll(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(notices, "|")
	mu.Unlock()
	if got != "NOTICE 00000 notice 1|NOTICE 00000 notice 2|WARNING 01000 careful" {
		t.Errorf("notices: %s", got)
	}
	// The statement finishes only after the client has seen its notice, so
	// this hangs unless notices are flushed while the statement runs.
	if _, err := pc.Exec(ctx, "noticewait").ReadAll(); err != nil {
		t.Fatal(err)
	}
}

func TestPgxTLS(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{TLS: testcert.Config(t), Password: "pw"})
	for _, params := range []string{"sslmode=require", "sslmode=require&sslnegotiation=direct"} {
		t.Run(params, func(t *testing.T) {
			conn, err := pgx.ConnectConfig(ctx, cancelRequestConfig(t, ts.connString("pw", params)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
			}
			selectOne(t, ctx, conn)

			// The cancel connection is encrypted the same way.
			qctx, cancel := context.WithCancel(ctx)
			go func() {
				<-ts.h.sleeping
				cancel()
			}()
			_, err = conn.Exec(qctx, "sleep")
			wantPgError(t, err, "57014")
			<-ts.h.stopped
			selectOne(t, ctx, conn)
		})
	}
	t.Run("plain connection still allowed", func(t *testing.T) {
		conn := connect(t, ctx, ts.connString("pw", "sslmode=disable"))
		selectOne(t, ctx, conn)
	})
	t.Run("prefer without TLS configured", func(t *testing.T) {
		plain := startServer(t, wire.Config{})
		conn := connect(t, ctx, plain.connString("", "sslmode=prefer"))
		if _, ok := conn.PgConn().Conn().(*tls.Conn); ok {
			t.Fatal("got TLS from a server without TLS")
		}
		selectOne(t, ctx, conn)
	})
}

func TestPgxMaxConnections(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{MaxConnections: 2})
	a := connect(t, ctx, ts.connString("", ""))
	connect(t, ctx, ts.connString("", ""))
	_, err := pgx.Connect(ctx, ts.connString("", ""))
	if pe := wantPgError(t, err, "53300"); pe.Message != "sorry, too many clients already" {
		t.Errorf("message %q", pe.Message)
	}
	a.Close(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := pgx.Connect(ctx, ts.connString("", ""))
		if err == nil {
			c.Close(ctx)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdown(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	idle := connect(t, ctx, ts.connString("", ""))
	busy := connect(t, ctx, ts.connString("", ""))
	intx := connect(t, ctx, ts.connString("", ""))
	if _, err := intx.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}

	busyErr := make(chan error, 1)
	go func() {
		_, err := busy.Exec(context.Background(), "sleep")
		busyErr <- err
	}()
	<-ts.h.sleeping

	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ts.srv.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if pe := wantPgError(t, <-busyErr, "57P01"); pe.Severity != "FATAL" {
		t.Errorf("severity %s", pe.Severity)
	}
	if _, err := idle.Exec(ctx, "select 1"); err == nil {
		t.Error("idle session survived shutdown")
	}
	if _, err := intx.Exec(ctx, "select 1"); err == nil {
		t.Error("session in a transaction survived shutdown")
	}
	if ok, err := ts.waitServe(5 * time.Second); !ok || err != nil {
		t.Errorf("Serve returned %v, %v", ok, err)
	}
	if _, err := pgx.Connect(ctx, ts.connString("", "")); err == nil {
		t.Error("connected after shutdown")
	}
	ts.h.waitClosed(t)
}

func TestShutdownGraceful(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	idle := connect(t, ctx, ts.connString("", ""))
	selectOne(t, ctx, idle)
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, err := idle.Exec(ctx, "select 1")
	if err == nil {
		t.Fatal("idle session survived shutdown")
	}
	ts.h.waitClosed(t)
}

func TestServeRefusesTrustOnNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("cannot listen on all interfaces: %v", err)
	}
	srv := wire.NewServer(wire.Config{}, newFakeHandler(), testLogger(t))
	if err := srv.Serve(context.Background(), ln); !errors.Is(err, wire.ErrTrustNotLoopback) {
		t.Fatalf("Serve = %v, want ErrTrustNotLoopback", err)
	}

	// With a password the same listener is fine.
	ln, err = net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = wire.NewServer(wire.Config{Password: "pw"}, newFakeHandler(), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	srv.Shutdown(context.Background())
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	other := connect(t, ctx, ts.connString("", ""))
	conn := connect(t, ctx, ts.connString("", ""))
	_, err := conn.Exec(ctx, "panic")
	wantPgError(t, err, "XX000")
	selectOne(t, ctx, other)
	selectOne(t, ctx, connect(t, ctx, ts.connString("", "")))
}

func TestIdleInTransactionIsNotTimedOut(t *testing.T) {
	t.Parallel() // it mostly sleeps
	ctx := testContext(t)
	ts := startServer(t, wire.Config{IdleSessionTimeout: time.Second})
	conn := connect(t, ctx, ts.connString("", ""))
	if _, err := conn.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	selectOne(t, ctx, conn)
	if _, err := conn.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	_, err := conn.Exec(ctx, "select 1")
	wantPgError(t, err, "57P05")
}

// pgx asks for records in binary; their fields arrive typed.
func TestPgxRecord(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{})
	conn := connect(t, ctx, ts.connString("", ""))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			rows, err := conn.Query(ctx, "record", mode)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			if !rows.Next() {
				t.Fatal(rows.Err())
			}
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			var want []any
			if mode == pgx.QueryExecModeSimpleProtocol {
				want = []any{`(1,"x y",)`, "5", `(1,"a b",,t)`}
			} else {
				want = []any{[]any{"1", "x y", nil}, "5", []any{int64(1), "a b", nil, true}}
			}
			if !reflect.DeepEqual(vals, want) {
				t.Errorf("values %#v, want %#v", vals, want)
			}
		})
	}
}
