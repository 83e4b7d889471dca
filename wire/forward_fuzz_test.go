package wire_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/wire"
)

// FuzzForward throws arbitrary messages at a forwarded session and checks
// what FuzzMessageLoop checks: no panic, no hang (the session ends once
// the client has said everything), and the server keeps serving. The
// upstream is a value-level wire server running fuzzHandler, so no
// Postgres is needed; the forwarder answers statements that start with
// "local" itself (local rows N, local error CODE, local params, local
// sleep), so that the fuzzer mixes forwarded and intercepted messages.
//
//	go test ./wire -run '^$' -fuzz FuzzForward -fuzztime 60s -fuzzminimizetime 2s
func FuzzForward(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		if seed[0]&3 == 0 {
			f.Add(seed[1:])
		}
	}
	enc := func(msgs ...pgproto3.FrontendMessage) []byte {
		var buf []byte
		for _, m := range msgs {
			var err error
			if buf, err = m.Encode(buf); err != nil {
				panic(err)
			}
		}
		return buf
	}
	f.Add(enc(&pgproto3.Query{String: "local rows 3; rows 2; local error 42P01; rows 1"}, &pgproto3.Query{String: "local rows 1"}))
	f.Add(enc(&pgproto3.Query{String: "begin"}, &pgproto3.Query{String: "local error 22012"}, &pgproto3.Query{String: "rows 1"},
		&pgproto3.Query{String: "rollback"}, &pgproto3.Query{String: "begin; local rows 2; commit"}))
	f.Add(enc(
		&pgproto3.Parse{Name: "l", Query: "local params", ParameterOIDs: []uint32{pgtype.Int4OID}},
		&pgproto3.Describe{ObjectType: 'S', Name: "l"},
		&pgproto3.Bind{PreparedStatement: "l", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 7}}, ResultFormatCodes: []int16{1}},
		&pgproto3.Execute{},
		&pgproto3.Parse{Query: "rows 2"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "local rows 5"}, &pgproto3.Bind{DestinationPortal: "p"},
		&pgproto3.Execute{Portal: "p", MaxRows: 2}, &pgproto3.Execute{Portal: "p"},
		&pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Close{ObjectType: 'S', Name: "l"},
		&pgproto3.Sync{},
		&pgproto3.Parse{Query: "local error 42883"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "rows 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Query{String: "local sleep; rows 1"}, &pgproto3.Terminate{}))
	f.Add(enc(&pgproto3.Parse{Name: "l", Query: "local rows 1"}, &pgproto3.Parse{Name: "l", Query: "rows 1"},
		&pgproto3.Sync{}, &pgproto3.Bind{DestinationPortal: "x", PreparedStatement: "l"}, &pgproto3.Bind{DestinationPortal: "x"}, &pgproto3.Sync{}))

	panics := &panicLog{}
	log := zerolog.New(panics).Level(zerolog.ErrorLevel)
	cfg := wire.Config{MaxMessageSize: 1 << 20, MaxConnections: 1000, MaxUnauthenticatedConnections: 1000}
	upstream := startFuzzServer(f, cfg, log)
	pcfg, err := pgconn.ParseConfig("postgres://upstream@" + upstream + "/db?sslmode=disable")
	if err != nil {
		f.Fatal(err)
	}
	// Upstream connections from rotating source addresses too, or their
	// TIME_WAITs use up the ports of one (see fuzzDial).
	var dials atomic.Int64
	pcfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n := dials.Add(1)
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+n%253))}}
		return d.DialContext(ctx, network, addr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := wire.NewForwardingServer(cfg, fuzzForwarder{pcfg}, log)
	go srv.Serve(context.Background(), ln)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	addr := ln.Addr().String()

	var runs atomic.Int64
	f.Fuzz(func(t *testing.T, input []byte) {
		conn, err := fuzzDial(runs.Add(1), addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := fuzzStartup(conn); err != nil {
			t.Fatalf("startup: %v", err)
		}
		go func() {
			conn.Write(input)
			conn.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		if p := panics.take(); p != "" {
			t.Fatalf("the server panicked: %s", p)
		}
		if runs.Load()%16 == 1 {
			checkAlive(t, addr)
		}
	})
}

// fuzzForwarder forwards to a value-level fuzz server and answers "local"
// statements itself.
type fuzzForwarder struct{ cfg *pgconn.Config }

func (f fuzzForwarder) Forward(ctx context.Context, info wire.SessionInfo) (wire.Upstream, error) {
	up, err := wire.ConnectUpstream(ctx, f.cfg, info)
	if err != nil {
		// What went wrong, for the fuzzer's report.
		return nil, &pgconn.PgError{Severity: "FATAL", Code: "08006", Message: err.Error()}
	}
	return fuzzUpstream{up}, nil
}

type fuzzUpstream struct{ *wire.PostgresUpstream }

func (fuzzUpstream) Intercept(_ context.Context, query string, declared []uint32) ([]wire.Part, error) {
	if !strings.Contains(strings.ToLower(query), "local") {
		return nil, nil
	}
	var parts []wire.Part
	for piece := range strings.SplitSeq(query, ";") {
		q := strings.ToLower(strings.TrimSpace(piece))
		if q == "" {
			continue
		}
		rest, ok := strings.CutPrefix(q, "local ")
		if !ok {
			parts = append(parts, wire.Part{Query: q})
			continue
		}
		word, arg, _ := strings.Cut(rest, " ")
		st := &fakeStatement{}
		switch word {
		case "rows":
			n, _ := strconv.Atoi(arg)
			n = max(0, min(n, 100))
			st.cols = []wire.Column{{Name: "n", OID: pgtype.Int8OID}}
			st.exec = func(context.Context, []any, wire.Notifier) (wire.Result, error) {
				res := &sliceResult{tag: "SELECT " + strconv.Itoa(n)}
				for i := range n {
					res.rows = append(res.rows, []any{int64(i)})
				}
				return res, nil
			}
		case "params":
			st.params = declared
			for i, oid := range declared {
				st.cols = append(st.cols, wire.Column{Name: "p" + strconv.Itoa(i+1), OID: oid})
			}
			st.exec = func(_ context.Context, params []any, _ wire.Notifier) (wire.Result, error) {
				return &sliceResult{rows: [][]any{params}, tag: "SELECT 1"}, nil
			}
		case "sleep":
			st.exec = func(ctx context.Context, _ []any, n wire.Notifier) (wire.Result, error) {
				n.Notice("NOTICE", "sleeping")
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(50 * time.Millisecond):
					return &sliceResult{tag: "DO"}, nil
				}
			}
		case "error":
			st.exec = func(context.Context, []any, wire.Notifier) (wire.Result, error) {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: arg, Message: "local fuzz"}
			}
		default:
			return nil, syntaxError(q)
		}
		parts = append(parts, wire.Part{Statement: st})
	}
	return parts, nil
}
