package main_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/internal/testcert"
)

// rawConn is a client socket that stops wherever the test wants it to.
type rawConn struct {
	net.Conn
	fe *pgproto3.Frontend
}

func dialRawConn(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, fe: pgproto3.NewFrontend(c, c)}
}

// holdUnauthenticated opens a connection that takes an unauthenticated
// slot and keeps it: silent, or stopped in the password exchange. It
// retries while the slot is still held by an earlier connection the server
// has not finished closing (pgcdctest.Start's readiness probe).
func holdUnauthenticated(t *testing.T, addr string, speak bool) *rawConn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialRawConn(t, addr)
		if speak {
			c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "mallory", "database": "pgcdc"}})
			if err := c.fe.Flush(); err != nil {
				t.Fatal(err)
			}
			msg, err := c.fe.Receive()
			if _, ok := msg.(*pgproto3.AuthenticationSASL); ok {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				return c
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != "53300" {
				t.Fatalf("after StartupMessage: got %#v, %v; want AuthenticationSASL", msg, err)
			}
		} else {
			// A refused connection gets its 53300 at once; a held one hears
			// nothing.
			c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			var b [1]byte
			_, err := c.Read(b[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				return c
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no unauthenticated slot came free")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClosedByServer reads until the server closes the connection; it
// must do so between min and max from now.
func (c *rawConn) waitClosedByServer(t *testing.T, min, max time.Duration) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server had not closed an unauthenticated connection after %v", took)
	}
	if took < min {
		t.Fatalf("the server closed an unauthenticated connection after %v, before %v", took, min)
	}
}

// TestServeAuthenticationLimits: connections that have not authenticated
// are bounded by their own limit and timeout, never take the session slots
// of --max-connections, and a wrong password waits --auth-failure-delay.
// The settings come from the environment, through the same parsing as the
// flags.
func TestServeAuthenticationLimits(t *testing.T) {
	ctx := testContext(t, time.Minute)
	const (
		timeout = 500 * time.Millisecond
		delay   = 700 * time.Millisecond
	)
	srv := pgcdctest.Start(t, pgcdctest.Options{
		Source:   source.DSN(""),
		Password: "right-pw",
		Env: []string{
			"PGCDC_MAX_CONNECTIONS=1",
			"PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS=2",
			"PGCDC_AUTHENTICATION_TIMEOUT=" + timeout.String(),
			"PGCDC_AUTH_FAILURE_DELAY=" + delay.String(),
		},
	})
	dsn := func(password string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=tester dbname=pgcdc sslmode=disable connect_timeout=10 password=%s", srv.Port, password)
	}

	// Two sockets fill the unauthenticated limit: one silent, one stopped
	// in the password exchange.
	stalled := holdUnauthenticated(t, srv.Addr, true)
	silent := holdUnauthenticated(t, srv.Addr, false)
	_, err := pgx.Connect(ctx, dsn("right-pw"))
	if code := pgCode(err); code != "53300" {
		t.Fatalf("connect while 2 of 2 unauthenticated slots are held: %v, want 53300", err)
	}
	// The authentication timeout frees them.
	silent.waitClosedByServer(t, 0, 5*time.Second)
	stalled.waitClosedByServer(t, 0, 5*time.Second)

	rep, err := pgx.Connect(ctx, dsn("right-pw"))
	if err != nil {
		t.Fatalf("connect with the right password after the timeout: %v", err)
	}
	defer rep.Close(context.Background())
	var one int
	if err := rep.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}

	// The one session slot is taken; a client still authenticating does
	// not need it, and is timed out on its own clock.
	late := holdUnauthenticated(t, srv.Addr, true)
	late.waitClosedByServer(t, timeout-100*time.Millisecond, 5*time.Second)
	if _, err := pgx.Connect(ctx, dsn("right-pw")); pgCode(err) != "53300" {
		t.Fatalf("a second session with --max-connections 1: %v, want 53300", err)
	}

	start := time.Now()
	_, err = pgx.Connect(ctx, dsn("wrong-pw"))
	if took := time.Since(start); pgCode(err) != "28P01" || took < delay-50*time.Millisecond {
		t.Fatalf("wrong password answered after %v with %v; want 28P01 after at least %v", took, err, delay)
	}
	if logs := srv.Logs(); strings.Contains(logs, "right-pw") || strings.Contains(logs, "wrong-pw") {
		t.Fatalf("a password is in the logs:\n%s", logs)
	}
}

// TestServeTLSRequired: with a password on an address other hosts can
// reach, TLS is required unless switched off, pgcdc will not start without
// a certificate, and a client without TLS is refused before the password
// exchange.
func TestServeTLSRequired(t *testing.T) {
	src := []string{"PGCDC_SOURCE=" + source.DSN(""), "PGCDC_PASSWORD=pw"}
	everywhere := func(t *testing.T) (listen, local string) {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Run("network without a certificate refuses to start", func(t *testing.T) {
		listen, _ := everywhere(t)
		out := runServe(t, src, "--listen", listen).wantStartFailure(t)
		for _, want := range []string{"TLS is required", "--tls-cert", "--tls-key", "--tls-required=false"} {
			if !strings.Contains(out, want) {
				t.Errorf("the refusal does not mention %s:\n%s", want, out)
			}
		}
	})
	t.Run("explicitly required without a certificate refuses to start", func(t *testing.T) {
		out := runServe(t, src, "--listen", "127.0.0.1:0", "--tls-required").wantStartFailure(t)
		if !strings.Contains(out, "--tls-required is set") || !strings.Contains(out, "--tls-cert") {
			t.Errorf("unclear refusal:\n%s", out)
		}
	})
	t.Run("network with a certificate refuses clients without TLS", func(t *testing.T) {
		ctx := testContext(t, 30*time.Second)
		listen, local := everywhere(t)
		cert, key := testcert.Files(t)
		p := runServe(t, src, "--listen", listen, "--tls-cert", cert, "--tls-key", key)
		p.waitListening(t, local)
		host, port, _ := net.SplitHostPort(local)
		dsn := fmt.Sprintf("host=%s port=%s user=tester dbname=pgcdc password=pw connect_timeout=10 ", host, port)

		// A raw client sees the refusal first: no authentication request.
		c := dialRawConn(t, local)
		c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "tester"}})
		c.fe.Flush()
		msg, err := c.fe.Receive()
		if e, ok := msg.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "28000" || e.Severity != "FATAL" ||
			e.Message != "pgcdc requires SSL: connect with sslmode=require" {
			t.Fatalf("plaintext StartupMessage answered %#v, %v; want FATAL 28000 before any authentication request", msg, err)
		}

		_, err = pgx.Connect(ctx, dsn+"sslmode=disable")
		if code := pgCode(err); code != "28000" {
			t.Fatalf("sslmode=disable: %v, want 28000", err)
		}
		conn, err := pgx.Connect(ctx, dsn+"sslmode=require")
		if err != nil {
			t.Fatalf("sslmode=require: %v", err)
		}
		defer conn.Close(context.Background())
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
		}
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("--tls-required=false accepts clients without TLS on the network", func(t *testing.T) {
		ctx := testContext(t, 30*time.Second)
		listen, local := everywhere(t)
		p := runServe(t, src, "--listen", listen, "--tls-required=false")
		p.waitListening(t, local)
		host, port, _ := net.SplitHostPort(local)
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=tester dbname=pgcdc password=pw sslmode=disable connect_timeout=10", host, port))
		if err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if !strings.Contains(p.out.String(), "TLS is not required on an address other hosts can reach") {
			t.Errorf("no warning about unencrypted clients on the network:\n%s", p.out)
		}
	})
}
