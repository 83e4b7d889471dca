package wire_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/wire"
)

// The forwarding tests put a wire server built with NewForwardingServer
// in front of a real, throwaway Postgres (internal/pgtest). The test
// forwarder answers a few statements itself (the local_* functions
// below) and forwards the rest. The same functions exist in the upstream
// with the same results, so every protocol script in
// testdata/forward/*.txt runs twice, straight against Postgres and
// through the proxy, and the two transcripts must be equal: Postgres is
// the oracle for what the proxy answers, including where it answers
// itself.

// localFunctions are the upstream's versions of what the test forwarder
// answers itself.
const localFunctions = `
CREATE OR REPLACE FUNCTION local_echo(t text) RETURNS TABLE (v text, n int) LANGUAGE sql AS $$ SELECT t, length(t) $$;
CREATE OR REPLACE FUNCTION local_rows(k int) RETURNS TABLE (i int) LANGUAGE sql AS $$ SELECT generate_series(1, k) $$;
CREATE OR REPLACE FUNCTION local_fail(code text) RETURNS TABLE (v text) LANGUAGE plpgsql AS
	$$ BEGIN RAISE EXCEPTION 'local failure' USING ERRCODE = code; END $$;
CREATE OR REPLACE FUNCTION local_notice(msg text) RETURNS TABLE (v text) LANGUAGE plpgsql AS
	$$ BEGIN RAISE NOTICE '%', msg; RETURN QUERY SELECT 'done'::text; END $$;
CREATE OR REPLACE FUNCTION local_sleep() RETURNS TABLE (v text) LANGUAGE sql AS $$ SELECT pg_sleep(60)::text $$;`

var (
	upstreamOnce sync.Once
	upstreamPG   *pgtest.Cluster
	upstreamErr  error
)

// upstreamCluster starts the throwaway Postgres the forwarding tests
// share, once, on first use; TestMain stops it.
func upstreamCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	upstreamOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		upstreamPG, upstreamErr = pgtest.Start(ctx, pgtest.Options{})
		if upstreamErr == nil {
			upstreamErr = upstreamPG.Exec(ctx, "postgres", localFunctions)
		}
	})
	if errors.Is(upstreamErr, pgtest.ErrNoServer) {
		t.Skip(upstreamErr)
	}
	if upstreamErr != nil {
		t.Fatal(upstreamErr)
	}
	return upstreamPG
}

func TestMain(m *testing.M) {
	code := m.Run()
	if upstreamPG != nil {
		upstreamPG.Stop()
	}
	os.Exit(code)
}

// testForwarder forwards to the upstream cluster and answers the local_*
// functions itself.
type testForwarder struct {
	cfg *pgconn.Config
	// sleeping receives the cause when a local_sleep() ends.
	sleeping chan error
}

func (f *testForwarder) Forward(ctx context.Context, info wire.SessionInfo) (wire.Upstream, error) {
	up, err := wire.ConnectUpstream(ctx, f.cfg, info)
	if err != nil {
		return nil, err
	}
	return &testUpstream{PostgresUpstream: up, f: f}, nil
}

type testUpstream struct {
	*wire.PostgresUpstream
	f *testForwarder
}

var localCall = regexp.MustCompile(`(?is)^\s*SELECT \* FROM (local_\w+)\((.*)\)\s*$`)

// Intercept splits at ';' (the scripts keep semicolons out of strings)
// and answers every local_* call.
func (u *testUpstream) Intercept(_ context.Context, query string, paramOIDs []uint32) ([]wire.Part, error) {
	if !strings.Contains(query, "local_") {
		return nil, nil
	}
	var parts []wire.Part
	for _, q := range strings.Split(query, ";") {
		if strings.TrimSpace(q) == "" {
			continue
		}
		m := localCall.FindStringSubmatch(q)
		if m == nil {
			parts = append(parts, wire.Part{Query: strings.TrimSpace(q)})
			continue
		}
		st, err := u.f.statement(m[1], strings.TrimSpace(m[2]), paramOIDs)
		if err != nil {
			return nil, err
		}
		parts = append(parts, wire.Part{Statement: st})
	}
	return parts, nil
}

// localStatement is a local_* call. Its errors and notices come from the
// first Next, as in Postgres, where RowDescription goes out before the
// function runs.
type localStatement struct {
	cols   []wire.Column
	params []uint32
	arg    string // the literal argument, when not $1
	run    func(ctx context.Context, arg string, n wire.Notifier) ([][]any, error)
}

func (f *testForwarder) statement(name, arg string, declared []uint32) (*localStatement, error) {
	st := &localStatement{cols: []wire.Column{{Name: "v", OID: pgtype.TextOID}}}
	argType := uint32(pgtype.TextOID)
	switch name {
	case "local_echo":
		st.cols = []wire.Column{{Name: "v", OID: pgtype.TextOID}, {Name: "n", OID: pgtype.Int4OID}}
		st.run = func(_ context.Context, a string, _ wire.Notifier) ([][]any, error) {
			return [][]any{{a, int32(utf8.RuneCountInString(a))}}, nil
		}
	case "local_rows":
		argType = pgtype.Int4OID
		st.cols = []wire.Column{{Name: "i", OID: pgtype.Int4OID}}
		st.run = func(_ context.Context, a string, _ wire.Notifier) ([][]any, error) {
			k, err := strconv.Atoi(a)
			if err != nil {
				return nil, &pgconn.PgError{Code: "22P02", Message: fmt.Sprintf("invalid input syntax for type integer: %q", a)}
			}
			var rows [][]any
			for i := 1; i <= k; i++ {
				rows = append(rows, []any{int32(i)})
			}
			return rows, nil
		}
	case "local_fail":
		st.run = func(_ context.Context, a string, _ wire.Notifier) ([][]any, error) {
			return nil, &pgconn.PgError{Code: a, Message: "local failure"}
		}
	case "local_notice":
		st.run = func(_ context.Context, a string, n wire.Notifier) ([][]any, error) {
			n.Notice("NOTICE", a)
			return [][]any{{"done"}}, nil
		}
	case "local_sleep":
		st.run = func(ctx context.Context, _ string, _ wire.Notifier) ([][]any, error) {
			<-ctx.Done()
			if f.sleeping != nil {
				f.sleeping <- context.Cause(ctx)
			}
			return nil, ctx.Err()
		}
	default:
		return nil, &pgconn.PgError{Code: "42883", Message: "function " + name + " does not exist"}
	}
	switch {
	case arg == "$1":
		st.params = []uint32{argType}
		if len(declared) > 0 && declared[0] != 0 {
			st.params[0] = declared[0]
		}
	case strings.HasPrefix(arg, "'") && strings.HasSuffix(arg, "'") && len(arg) >= 2:
		st.arg = strings.ReplaceAll(arg[1:len(arg)-1], "''", "'")
	default:
		st.arg = arg
	}
	return st, nil
}

func (st *localStatement) ParamOIDs() []uint32    { return st.params }
func (st *localStatement) Columns() []wire.Column { return st.cols }
func (st *localStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	arg := st.arg
	if len(params) > 0 {
		arg = fmt.Sprint(params[0])
	}
	return &localResult{ctx: ctx, run: func() ([][]any, error) { return st.run(ctx, arg, n) }}, nil
}

type localResult struct {
	ctx  context.Context
	run  func() ([][]any, error)
	rows [][]any
	ran  bool
	i    int
}

func (r *localResult) Next(context.Context) ([]any, error) {
	if !r.ran {
		r.ran = true
		rows, err := r.run()
		if err != nil {
			return nil, err
		}
		r.rows = rows
	}
	if r.i >= len(r.rows) {
		return nil, io.EOF
	}
	r.i++
	return r.rows[r.i-1], nil
}

func (r *localResult) Tag() string  { return fmt.Sprintf("SELECT %d", len(r.rows)) }
func (r *localResult) Close() error { return nil }

// proxy is a forwarding server in front of the upstream cluster.
type proxy struct {
	srv  *wire.Server
	addr string
	pg   *pgtest.Cluster
	fwd  *testForwarder
}

func startProxy(t *testing.T, cfg wire.Config) *proxy {
	t.Helper()
	pg := upstreamCluster(t)
	pcfg, err := pgconn.ParseConfig(pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), pg: pg, fwd: &testForwarder{cfg: pcfg, sleeping: make(chan error, 4)}}
	p.srv = wire.NewForwardingServer(cfg, p.fwd, testLogger(t))
	served := make(chan error, 1)
	go func() { served <- p.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p
}

// dsn is a connection string for the proxy.
func (p *proxy) dsn() string {
	return fmt.Sprintf("postgres://alice@%s/appdb?sslmode=disable&connect_timeout=5&application_name=forwardtest", p.addr)
}

// directDSN is a connection string for the upstream itself.
func (p *proxy) directDSN() string {
	return p.pg.DSN("postgres") + "&connect_timeout=5&application_name=forwardtest"
}

// scriptConn is a raw protocol connection opened by pgconn, for scripts.
type scriptConn struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialScript(t *testing.T, ctx context.Context, dsn string) *scriptConn {
	t.Helper()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	hc.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { hc.Conn.Close() })
	return &scriptConn{t: t, conn: hc.Conn, fe: pgproto3.NewFrontend(hc.Conn, hc.Conn)}
}

// runScript sends a script's messages and returns what came back, one
// line per message.
func (c *scriptConn) runScript(script string) []string {
	c.t.Helper()
	var got []string
	sc := bufio.NewScanner(strings.NewReader(script))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, rest, _ := strings.Cut(line, " ")
		if cmd == "until" {
			k, err := strconv.Atoi(rest)
			if err != nil {
				c.t.Fatalf("line %d: %q", n, line)
			}
			if err := c.fe.Flush(); err != nil {
				c.t.Fatalf("line %d: flush: %v", n, err)
			}
			got = append(got, c.until(k)...)
			continue
		}
		msg, err := scriptMessage(cmd, rest)
		if err != nil {
			c.t.Fatalf("line %d: %v", n, err)
		}
		c.fe.Send(msg)
	}
	return got
}

// until reads messages until the k-th ReadyForQuery.
func (c *scriptConn) until(k int) []string {
	var got []string
	for k > 0 {
		msg, err := c.fe.Receive()
		if err != nil {
			c.t.Fatalf("receive after %q: %v", got, err)
		}
		got = append(got, describeFull(msg))
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			k--
		}
	}
	return got
}

// scriptMessage parses one script line:
//
//	Query <sql>
//	Parse <name> <sql>                   names: "" is the unnamed one
//	Bind <portal> <stmt> [p1|p2|...]     text parameters, \N for NULL
//	BindBinary <portal> <stmt> [...]     the same, binary results
//	Describe S|P <name>
//	Execute <portal> [max rows]
//	Close S|P <name>
//	Sync, Flush, CopyDone
//	CopyData <text>                      \t and \n stand for tab and newline
//	CopyFail <message>
//	until <n>                            read up to the n-th ReadyForQuery
func scriptMessage(cmd, rest string) (pgproto3.FrontendMessage, error) {
	name := func(s string) string {
		if s == `""` {
			return ""
		}
		return s
	}
	f := strings.Fields(rest)
	need := func(n int) error {
		if len(f) < n {
			return fmt.Errorf("%s needs %d arguments", cmd, n)
		}
		return nil
	}
	switch cmd {
	case "Query":
		return &pgproto3.Query{String: rest}, nil
	case "Parse":
		n, q, _ := strings.Cut(rest, " ")
		return &pgproto3.Parse{Name: name(n), Query: q}, nil
	case "Bind", "BindBinary":
		if err := need(2); err != nil {
			return nil, err
		}
		b := &pgproto3.Bind{DestinationPortal: name(f[0]), PreparedStatement: name(f[1])}
		if len(f) > 2 {
			for _, p := range strings.Split(strings.Join(f[2:], " "), "|") {
				if p == `\N` {
					b.Parameters = append(b.Parameters, nil)
				} else {
					b.Parameters = append(b.Parameters, []byte(p))
				}
			}
		}
		if cmd == "BindBinary" {
			b.ResultFormatCodes = []int16{1}
		}
		return b, nil
	case "Describe", "Close":
		if err := need(2); err != nil {
			return nil, err
		}
		if cmd == "Describe" {
			return &pgproto3.Describe{ObjectType: f[0][0], Name: name(f[1])}, nil
		}
		return &pgproto3.Close{ObjectType: f[0][0], Name: name(f[1])}, nil
	case "Execute":
		if err := need(1); err != nil {
			return nil, err
		}
		e := &pgproto3.Execute{Portal: name(f[0])}
		if len(f) > 1 {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, err
			}
			e.MaxRows = uint32(n)
		}
		return e, nil
	case "Sync":
		return &pgproto3.Sync{}, nil
	case "Flush":
		return &pgproto3.Flush{}, nil
	case "CopyData":
		return &pgproto3.CopyData{Data: []byte(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(rest))}, nil
	case "CopyDone":
		return &pgproto3.CopyDone{}, nil
	case "CopyFail":
		return &pgproto3.CopyFail{Message: rest}, nil
	}
	return nil, fmt.Errorf("unknown message %q", cmd)
}

// describeFull renders a backend message as a script transcript line,
// with everything in it that a client could tell apart, except what
// differs between two sessions (a NOTICE's source location, a PID).
func describeFull(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		var f []string
		for _, fd := range m.Fields {
			f = append(f, fmt.Sprintf("%s:%d:%d:%d:%d", fd.Name, fd.DataTypeOID, fd.DataTypeSize, fd.TypeModifier, fd.Format))
		}
		return "RowDescription " + strings.Join(f, ",")
	case *pgproto3.DataRow:
		var v []string
		for _, b := range m.Values {
			switch {
			case b == nil:
				v = append(v, "NULL")
			case utf8.Valid(b) && !slices.ContainsFunc(b, func(c byte) bool { return c < 0x20 && c != '\t' && c != '\n' }):
				v = append(v, strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(string(b)))
			default:
				v = append(v, "0x"+hex.EncodeToString(b))
			}
		}
		return "DataRow " + strings.Join(v, "|")
	case *pgproto3.CopyData:
		return "CopyData " + strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(string(m.Data))
	case *pgproto3.CopyInResponse:
		return fmt.Sprintf("CopyInResponse %d %v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.CopyOutResponse:
		return fmt.Sprintf("CopyOutResponse %d %v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name + "=" + m.Value
	}
	return describe(msg)
}

// TestForwardScripts runs every script in testdata/forward against
// Postgres and through the proxy, and compares the transcripts.
func TestForwardScripts(t *testing.T) {
	p := startProxy(t, wire.Config{})
	files, err := filepath.Glob(filepath.Join("testdata", "forward", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			script, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testContext(t)
			want := dialScript(t, ctx, p.directDSN()).runScript(string(script))
			got := dialScript(t, ctx, p.dsn()).runScript(string(script))
			if !slices.Equal(got, want) {
				t.Errorf("the proxy answered differently from Postgres\n%s", sideBySide(want, got))
			}
			if testing.Verbose() {
				t.Logf("transcript:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// sideBySide lays two transcripts out line by line, marking differences.
func sideBySide(want, got []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "   %-60s | %s\n", "postgres", "proxy")
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		mark := "  "
		if w != g {
			mark = "!!"
		}
		fmt.Fprintf(&b, "%s %-60s | %s\n", mark, w, g)
	}
	return b.String()
}
