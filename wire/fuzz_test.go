package wire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/wire"
)

// FuzzMessageLoop throws arbitrary bytes at the server and checks that it
// never panics, never hangs (every connection ends once the client has said
// all it had to say), and keeps serving fresh connections.
//
// The first byte of an input picks the mode; the rest goes on the wire:
//
//	mode&3 == 0   trust; a valid startup first, then the bytes as messages
//	mode&3 == 1   trust; the bytes from the first one (startup packets)
//	mode&3 >= 2   SCRAM; the bytes from the first one (startup and auth)
//
// The seed corpus is testdata/fuzz/FuzzMessageLoop; to rewrite it from
// fuzzSeeds, run the tests with PGCDC_WRITE_FUZZ_CORPUS=1. Run the fuzzer
// with: go test ./wire -run '^$' -fuzz FuzzMessageLoop -fuzztime 60s
// (-fuzzminimizetime 2s keeps it fuzzing rather than minimizing the long
// inputs it finds interesting).
func FuzzMessageLoop(f *testing.F) {
	if os.Getenv("PGCDC_WRITE_FUZZ_CORPUS") != "" {
		writeFuzzCorpus(f)
	}
	panics := &panicLog{}
	log := zerolog.New(panics).Level(zerolog.ErrorLevel)
	cfg := wire.Config{MaxMessageSize: 1 << 20, MaxConnections: 1000, MaxUnauthenticatedConnections: 1000}
	trust := startFuzzServer(f, cfg, log)
	cfg.Password = "pw"
	scram := startFuzzServer(f, cfg, log)

	var runs atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, input := data[0], data[1:]
		addr := trust
		if mode&3 >= 2 {
			addr = scram
		}
		conn, err := fuzzDial(runs.Add(1), addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if mode&3 == 0 {
			if err := fuzzStartup(conn); err != nil {
				t.Fatalf("startup: %v", err)
			}
		}
		// Write in the background: the server may stop reading (a FATAL)
		// while input is still unsent.
		go func() {
			conn.Write(input)
			conn.(*net.TCPConn).CloseWrite()
		}()
		// The server must answer and close the connection by itself once
		// the client has said everything: a hang is a failure.
		if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		if p := panics.take(); p != "" {
			t.Fatalf("the server panicked: %s", p)
		}
		if runs.Load()%16 == 1 {
			checkAlive(t, trust)
		}
	})
}

// fuzzDial connects from 127.0.0.2 to 127.0.0.254 in turn: each input
// leaves a connection in TIME_WAIT, and tens of thousands of them would use
// up the ephemeral ports of a single source address and stall the fuzzer.
func fuzzDial(n int64, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%253))}}
	return d.Dial("tcp", addr)
}

func isReset(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") || (errors.As(err, &ne) && !ne.Timeout())
}

// panicLog collects the server's error-level log lines about panics.
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *panicLog) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic")) {
		p.mu.Lock()
		p.buf.Write(b)
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *panicLog) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.buf.String()
	p.buf.Reset()
	return s
}

func startFuzzServer(f *testing.F, cfg wire.Config, log zerolog.Logger) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := wire.NewServer(cfg, fuzzHandler{}, log)
	go srv.Serve(context.Background(), ln)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// fuzzStartup opens a trust session and reads up to ReadyForQuery.
func fuzzStartup(conn net.Conn) error {
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "fuzz"}})
	if err := fe.Flush(); err != nil {
		return err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("refused: %s %s %s", m.Severity, m.Code, m.Message)
		}
	}
}

// checkAlive runs a query on a fresh connection.
func checkAlive(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the server stopped accepting: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := fuzzStartup(conn); err != nil {
		t.Fatalf("a fresh connection failed: %v", err)
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.Query{String: "rows 1"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("a fresh connection failed: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			t.Fatalf("a fresh connection failed: %s", m.Message)
		case *pgproto3.ReadyForQuery:
			return
		}
	}
}

// fuzzHandler is a handler whose every statement is cheap and bounded, so
// that all the fuzzer can find is in the wire layer:
//
//	rows N        N int8 rows (N capped at 100)
//	types         a row of every common type
//	params        echoes its parameters, typed as the client declared them
//	sleep         runs until cancelled, or 50ms
//	notice        a NOTICE and a ParameterStatus
//	error CODE    an ERROR with that SQLSTATE; "fatal" a FATAL
//	begin, commit, rollback
//	copy out|in text|csv|csvheader|binary   COPY (copy_test.go)
//
// Statements are split on ';'; anything else is a syntax error.
type fuzzHandler struct{}

func (fuzzHandler) NewSession(context.Context, wire.SessionInfo) (wire.SessionHandler, error) {
	return &fuzzSession{tx: 'I'}, nil
}

type fuzzSession struct{ tx byte }

func (s *fuzzSession) TxStatus() byte { return s.tx }
func (s *fuzzSession) Close() error   { return nil }
func (s *fuzzSession) Failed(error) {
	if s.tx == 'T' {
		s.tx = 'E'
	}
}

func (s *fuzzSession) Parse(_ context.Context, query string, declared []uint32) ([]wire.Statement, error) {
	var out []wire.Statement
	for part := range strings.SplitSeq(query, ";") {
		q := strings.ToLower(strings.TrimSpace(part))
		if q == "" || strings.HasPrefix(q, "--") {
			continue // pgconn's SyncConn pings with "-- ping"
		}
		word, rest, _ := strings.Cut(q, " ")
		st := &fakeStatement{}
		switch word {
		case "rows":
			n, _ := strconv.Atoi(rest)
			n = max(0, min(n, 100))
			st.cols = []wire.Column{{Name: "n", OID: pgtype.Int8OID}}
			st.exec = func(context.Context, []any, wire.Notifier) (wire.Result, error) {
				res := &sliceResult{tag: fmt.Sprintf("SELECT %d", n)}
				for i := range n {
					res.rows = append(res.rows, []any{int64(i)})
				}
				return res, nil
			}
		case "types":
			st = rows(typesColumns, "SELECT 1", typesRow)
		case "params":
			st.params = declared
			for i, oid := range declared {
				st.cols = append(st.cols, wire.Column{Name: fmt.Sprintf("p%d", i+1), OID: oid})
			}
			st.exec = func(_ context.Context, params []any, _ wire.Notifier) (wire.Result, error) {
				return &sliceResult{rows: [][]any{params}, tag: "SELECT 1"}, nil
			}
		case "sleep":
			st.exec = func(ctx context.Context, _ []any, _ wire.Notifier) (wire.Result, error) {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(50 * time.Millisecond):
					return &sliceResult{tag: "DO"}, nil
				}
			}
		case "notice":
			st.exec = func(_ context.Context, _ []any, n wire.Notifier) (wire.Result, error) {
				n.Notice("NOTICE", "fuzz")
				n.ParameterStatus("application_name", "fuzz")
				return &sliceResult{tag: "DO"}, nil
			}
		case "error", "fatal":
			severity := strings.ToUpper(word)
			st.exec = func(context.Context, []any, wire.Notifier) (wire.Result, error) {
				return nil, &pgconn.PgError{Severity: severity, Code: rest, Message: "fuzz"}
			}
		case "copy":
			cs, err := (&fakeSession{}).copyStatement(q)
			if err != nil {
				s.Failed(nil)
				return nil, syntaxError(q)
			}
			out = append(out, cs)
			continue
		case "begin", "commit", "rollback":
			st.exec = func(context.Context, []any, wire.Notifier) (wire.Result, error) {
				if word == "begin" {
					s.tx = 'T'
				} else {
					s.tx = 'I'
				}
				return &sliceResult{tag: strings.ToUpper(word)}, nil
			}
		default:
			s.Failed(nil)
			return nil, syntaxError(q)
		}
		out = append(out, st)
	}
	return out, nil
}

// fuzzSeeds are the seed inputs: what real clients send, and the classic
// ways of getting it wrong.
func fuzzSeeds() map[string][]byte {
	enc := func(mode byte, msgs ...pgproto3.FrontendMessage) []byte {
		buf := []byte{mode}
		for _, m := range msgs {
			var err error
			if buf, err = m.Encode(buf); err != nil {
				panic(err)
			}
		}
		return buf
	}
	startup := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "fuzz", "database": "db", "application_name": "seed"}}
	pipeline := []pgproto3.FrontendMessage{
		&pgproto3.Parse{Name: "s1", Query: "params", ParameterOIDs: []uint32{pgtype.Int4OID, pgtype.TextOID}},
		&pgproto3.Describe{ObjectType: 'S', Name: "s1"},
		&pgproto3.Bind{PreparedStatement: "s1", ParameterFormatCodes: []int16{1, 0},
			Parameters: [][]byte{{0, 0, 0, 7}, []byte("seven")}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Parse{Query: "rows 5"},
		&pgproto3.Bind{DestinationPortal: "p"},
		&pgproto3.Execute{Portal: "p", MaxRows: 2},
		&pgproto3.Execute{Portal: "p", MaxRows: 2},
		&pgproto3.Flush{},
		&pgproto3.Execute{Portal: "p"},
		&pgproto3.Close{ObjectType: 'P', Name: "p"},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"},
		&pgproto3.Sync{},
	}
	seeds := map[string][]byte{
		"simple_query":      enc(0, &pgproto3.Query{String: "rows 3; types; notice"}, &pgproto3.Query{String: ""}, &pgproto3.Terminate{}),
		"extended_pipeline": enc(0, pipeline...),
		"error_then_sync": enc(0, &pgproto3.Parse{Query: "error 42883"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "rows 1"}, &pgproto3.Sync{}, &pgproto3.Query{String: "rows 1"}),
		"transaction": enc(0, &pgproto3.Query{String: "begin"}, &pgproto3.Query{String: "nonsense"},
			&pgproto3.Query{String: "rows 1"}, &pgproto3.Query{String: "rollback"}, &pgproto3.Query{String: "begin; notice; commit"}),
		"binary_params": enc(0, &pgproto3.Parse{Query: "params", ParameterOIDs: []uint32{pgtype.Int8OID, pgtype.Float8OID, pgtype.NumericOID,
			pgtype.TimestamptzOID, pgtype.TextArrayOID, pgtype.JSONBOID, pgtype.UUIDOID, 3220}},
			&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{
				{0, 0, 0, 0, 0, 0, 0, 1}, {0x40, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
				{0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0}, {1, '{', '}'}, make([]byte, 16), {0, 0, 0, 1, 0, 0, 0, 2}},
				ResultFormatCodes: []int16{1}},
			&pgproto3.Execute{}, &pgproto3.Sync{}),
		"text_params": enc(0, &pgproto3.Parse{Query: "params", ParameterOIDs: []uint32{pgtype.DateOID, pgtype.BoolOID, pgtype.Int4ArrayOID, pgtype.IntervalOID, pgtype.RecordOID}},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("2024-01-02"), []byte("t"), []byte("{1,NULL,3}"), []byte("1 day"), []byte("(1,x)")}},
			&pgproto3.Execute{}, &pgproto3.Sync{}),
		"cancel_sleep":  enc(0, &pgproto3.Query{String: "sleep"}, &pgproto3.Query{String: "sleep; rows 2"}),
		"fatal":         enc(0, &pgproto3.Query{String: "fatal 57P01"}, &pgproto3.Query{String: "rows 1"}),
		"fastpath_copy": enc(0, &pgproto3.FunctionCall{Function: 1}, &pgproto3.CopyData{Data: []byte("x")}, &pgproto3.CopyDone{}, &pgproto3.CopyFail{Message: "no"}, &pgproto3.Sync{}),
		"copy": enc(0, &pgproto3.Query{String: "copy out csv; copy in text"}, &pgproto3.CopyData{Data: []byte("1\tx\tt\n2\t")},
			&pgproto3.Flush{}, &pgproto3.CopyData{Data: []byte("\\N\tf\n")}, &pgproto3.CopyDone{},
			&pgproto3.Parse{Query: "copy in binary"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.CopyData{Data: []byte("PGCOPY\n\xff\r\n\x00")},
			&pgproto3.CopyFail{Message: "stop"}, &pgproto3.Sync{}, &pgproto3.Query{String: "copy in csvheader"}, &pgproto3.Query{String: "rows 1"}),
		"bad_describe":   enc(0, &pgproto3.Describe{ObjectType: 'X'}, &pgproto3.Sync{}),
		"unknown_portal": enc(0, &pgproto3.Execute{Portal: "nope"}, &pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Sync{}),
		"bad_formats": enc(0, &pgproto3.Parse{Query: "rows 1"}, &pgproto3.Bind{ResultFormatCodes: []int16{1, 0, 1}},
			&pgproto3.Sync{}, &pgproto3.Parse{Query: "rows 1"}, &pgproto3.Bind{ResultFormatCodes: []int16{7}}, &pgproto3.Sync{}),
		"truncated":       append(enc(0, &pgproto3.Query{String: "rows 1"}), 'Q', 0, 0, 0, 40, 's', 'e'),
		"huge_length":     {0, 'Q', 0x7f, 0xff, 0xff, 0xff, 'x'},
		"negative_length": {0, 'P', 0xff, 0xff, 0xff, 0xf0, 0, 0},
		"unknown_type":    {0, 'z', 0, 0, 0, 4, 'S', 0, 0, 0, 4},
		"startup":         enc(1, startup, &pgproto3.Query{String: "rows 2"}, &pgproto3.Terminate{}),
		"ssl_gss_requests": enc(1, &pgproto3.GSSEncRequest{}, &pgproto3.SSLRequest{}, startup,
			&pgproto3.Query{String: "rows 1"}),
		"cancel_request": enc(1, &pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}}),
		"protocol_3_2": enc(1, &pgproto3.StartupMessage{ProtocolVersion: 3<<16 | 2,
			Parameters: map[string]string{"user": "fuzz", "_pq_.test": "1"}}, &pgproto3.Sync{}),
		"protocol_4":        enc(1, &pgproto3.StartupMessage{ProtocolVersion: 4 << 16, Parameters: map[string]string{"user": "fuzz"}}),
		"startup_no_user":   enc(1, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": "x"}}),
		"startup_malformed": {1, 0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'},
		"scram_start": enc(2, startup, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256",
			Data: []byte("n,,n=fuzz,r=rOprNGfwEbeRWgbNEkqO")}),
		"scram_bad_mechanism": enc(2, startup, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS",
			Data: []byte("p=tls-server-end-point,,n=,r=abc")}),
		"scram_password_message": enc(2, startup, &pgproto3.PasswordMessage{Password: "pw"}),
	}
	// A length that says "more is coming" with nothing after it.
	half := make([]byte, 0, 16)
	half = append(half, 0, 'D')
	half = binary.BigEndian.AppendUint32(half, 1000)
	seeds["half_message"] = half
	return seeds
}

// writeFuzzCorpus writes fuzzSeeds as the checked-in seed corpus.
func writeFuzzCorpus(f *testing.F) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMessageLoop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for name, data := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}
