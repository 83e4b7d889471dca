package wire_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/wire"
)

// connectProxy opens a pgx connection through p.
func connectProxy(t *testing.T, ctx context.Context, p *proxy) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, p.dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestForwardStartup: the client starts with the upstream's settings, its
// startup parameters reach the upstream, and the PID it is given is the
// upstream backend's.
func TestForwardStartup(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	direct, err := pgconn.Connect(ctx, p.directDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	proxied, err := pgconn.Connect(ctx, p.dsn()+"&timezone=America/Lima&datestyle=SQL,DMY")
	if err != nil {
		t.Fatal(err)
	}
	defer proxied.Close(ctx)
	for _, name := range []string{"server_version", "server_encoding", "client_encoding", "integer_datetimes", "is_superuser", "application_name", "standard_conforming_strings"} {
		if d, g := direct.ParameterStatus(name), proxied.ParameterStatus(name); d != g || g == "" {
			t.Errorf("ParameterStatus %s: upstream %q, proxy %q", name, d, g)
		}
	}
	if tz, ds := proxied.ParameterStatus("TimeZone"), proxied.ParameterStatus("DateStyle"); tz != "America/Lima" || ds != "SQL, DMY" {
		t.Errorf("startup parameters did not reach the upstream: TimeZone %q, DateStyle %q", tz, ds)
	}
	res, err := proxied.Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if pid := string(res[0].Rows[0][0]); pid != fmt.Sprint(proxied.PID()) {
		t.Errorf("pg_backend_pid() %s, BackendKeyData PID %d", pid, proxied.PID())
	}
}

// TestForwardCancel: a CancelRequest cancels a statement running upstream
// (forwarded with the upstream's key) or one answered by the proxy (its
// context), and the session goes on either way.
func TestForwardCancel(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	conn := connectProxy(t, ctx, p)
	for _, tc := range []struct{ name, query string }{
		{"upstream", "SELECT pg_sleep(30)"},
		{"local", "SELECT * FROM local_sleep()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := conn.Exec(ctx, tc.query)
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			if err := conn.PgConn().CancelRequest(ctx); err != nil {
				t.Fatal(err)
			}
			err := <-done
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "57014" || time.Since(start) > 10*time.Second {
				t.Fatalf("cancelled %s: %v after %v", tc.query, err, time.Since(start))
			}
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatalf("after the cancel: %v", err)
			}
		})
	}
	select {
	case cause := <-p.fwd.sleeping:
		if !strings.Contains(fmt.Sprint(cause), "CancelRequest") {
			t.Errorf("local_sleep ended with %v", cause)
		}
	default:
		t.Error("local_sleep did not end")
	}
}

// TestForwardClientHangup: a client that hangs up while the proxy answers
// a statement cancels it.
func TestForwardClientHangup(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	conn, err := pgconn.Connect(ctx, p.dsn())
	if err != nil {
		t.Fatal(err)
	}
	conn.Frontend().Send(&pgproto3.Query{String: "SELECT * FROM local_sleep()"})
	if err := conn.Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	conn.Conn().Close()
	select {
	case cause := <-p.fwd.sleeping:
		if !strings.Contains(fmt.Sprint(cause), "connection lost") {
			t.Errorf("local_sleep ended with %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the statement kept running after the client hung up")
	}
}

// TestForwardShutdown: Shutdown ends an idle session at once, lets a
// session inside a transaction block finish it, and then ends that one too.
func TestForwardShutdown(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	idle := connectProxy(t, ctx, p)
	busy := connectProxy(t, ctx, p)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.srv.Shutdown(sctx)
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the idle session was not ended")
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("a session in a transaction block was cut off: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not end the session after its COMMIT")
	}
	if _, err := busy.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the session still runs after Shutdown")
	}
}

// TestForwardIdleTimeout: a session idle outside a transaction block is
// ended with 57P05; one inside a block is not.
func TestForwardIdleTimeout(t *testing.T) {
	p := startProxy(t, wire.Config{IdleSessionTimeout: 300 * time.Millisecond})
	ctx := testContext(t)
	inTx := connectProxy(t, ctx, p)
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.Connect(ctx, p.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	time.Sleep(time.Second)
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	if err == nil {
		t.Fatal("the idle session is still open")
	}
	if _, err := inTx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the session in a transaction block was ended: %v", err)
	}
}

// TestForwardUpstreamTerminated: when the upstream ends the session, the
// client gets the upstream's own FATAL.
func TestForwardUpstreamTerminated(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	conn := connectProxy(t, ctx, p)
	direct, err := pgx.Connect(ctx, p.directDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if _, err := direct.Exec(ctx, "SELECT pg_terminate_backend($1)", conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P01" {
		// pgx may see the close before it reads the FATAL.
		if !conn.IsClosed() {
			t.Fatalf("after pg_terminate_backend: %v", err)
		}
	}
}

// TestForwardLargeMessages: rows and COPY data far larger than the relay's
// buffers go through intact, in both directions.
func TestForwardLargeMessages(t *testing.T) {
	p := startProxy(t, wire.Config{})
	ctx := testContext(t)
	conn := connectProxy(t, ctx, p)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	var got string
	if err := conn.QueryRow(ctx, "SELECT $1::text || $1::text", big).Scan(&got); err != nil || got != big+big {
		t.Fatalf("a 2 MiB row: %d bytes, %v", len(got), err)
	}
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE t (id int, s text)"); err != nil {
		t.Fatal(err)
	}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"id", "s"}, pgx.CopyFromSlice(64, func(i int) ([]any, error) {
		return []any{i, big}, nil
	}))
	if err != nil || n != 64 {
		t.Fatalf("CopyFrom 64 MiB: %d, %v", n, err)
	}
	var total int64
	if err := conn.QueryRow(ctx, "SELECT sum(length(s)) FROM t").Scan(&total); err != nil || total != 64*int64(len(big)) {
		t.Fatalf("copied %d bytes, %v", total, err)
	}
}
