package wire_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/internal/testcert"
	"github.com/pgcdc/pgcdc/wire"
)

// beginSCRAM sends a StartupMessage and reads the AuthenticationSASL that
// answers it: the connection is then in the middle of authenticating.
func (c *rawClient) beginSCRAM() {
	c.t.Helper()
	c.send(startupMessage(pgproto3.ProtocolVersion30))
	msg, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("after StartupMessage: %v", err)
	}
	if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		c.t.Fatalf("after StartupMessage: got %s, want AuthenticationSASL", describe(msg))
	}
}

// sendWrongProof runs a SCRAM exchange to its end with a proof that cannot
// match any password.
func (c *rawClient) sendWrongProof() {
	c.t.Helper()
	c.beginSCRAM()
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=clientnonce")})
	msg, err := c.fe.Receive()
	if err != nil {
		c.t.Fatal(err)
	}
	cont, ok := msg.(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		c.t.Fatalf("got %s, want AuthenticationSASLContinue", describe(msg))
	}
	nonce, _, _ := strings.Cut(strings.TrimPrefix(string(cont.Data), "r="), ",")
	c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")})
}

// Sockets that have not authenticated, whether they sent a startup packet
// or nothing at all, must not take the slots of clients that know the
// password.
func TestUnauthenticatedConnectionsTakeNoSessionSlots(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{Password: "pw", MaxConnections: 1, MaxUnauthenticatedConnections: 8})
	for range 3 {
		dialRaw(t, ts).beginSCRAM()
	}
	dialRaw(t, ts) // says nothing

	conn := connect(t, ctx, ts.connString("pw", ""))
	selectOne(t, ctx, conn)

	// MaxConnections still bounds the authenticated sessions.
	_, err := pgx.Connect(ctx, ts.connString("pw", ""))
	if pe := wantPgError(t, err, "53300"); pe.Message != "sorry, too many clients already" {
		t.Errorf("message %q", pe.Message)
	}
}

func TestUnauthenticatedConnectionLimit(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{Password: "pw", MaxUnauthenticatedConnections: 2})
	silent := dialRaw(t, ts) // counts from accept, before any startup packet
	dialRaw(t, ts).beginSCRAM()

	t.Run("raw client", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.conn.SetDeadline(time.Now().Add(3 * time.Second))
		if got := c.untilEOF(); len(got) != 1 || got[0] != "ErrorResponse FATAL 53300 sorry, too many clients already" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("pgx", func(t *testing.T) {
		_, err := pgx.Connect(ctx, ts.connString("pw", ""))
		if pe := wantPgError(t, err, "53300"); pe.Severity != "FATAL" || pe.Message != "sorry, too many clients already" {
			t.Errorf("got %s %q", pe.Severity, pe.Message)
		}
	})

	// A slot comes back when its connection ends.
	silent.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := pgx.Connect(ctx, ts.connString("pw", ""))
		if err == nil {
			c.Close(ctx)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Authenticated sessions do not count against the limit.
	for range 3 {
		selectOne(t, ctx, connect(t, ctx, ts.connString("pw", "")))
	}
}

// The authentication timeout covers the TLS handshake, the startup packet
// and the authentication exchange, and gives the slot back: the limit of
// one unauthenticated connection would refuse each next case otherwise.
func TestAuthenticationTimeout(t *testing.T) {
	ctx := testContext(t)
	const timeout = 300 * time.Millisecond
	ts := startServer(t, wire.Config{
		Password: "pw", TLS: testcert.Config(t), AuthenticationTimeout: timeout, MaxUnauthenticatedConnections: 1,
	})
	for _, tc := range []struct {
		name  string
		stall func(*rawClient)
	}{
		{"no startup packet", func(*rawClient) {}},
		{"half a startup packet", func(c *rawClient) { c.conn.Write([]byte{0, 0, 0, 40, 0, 3}) }},
		{"TLS handshake never starts", func(c *rawClient) {
			b, _ := (&pgproto3.SSLRequest{}).Encode(nil)
			c.conn.Write(b)
			var answer [1]byte
			if _, err := io.ReadFull(c.conn, answer[:]); err != nil || answer[0] != 'S' {
				t.Fatalf("SSLRequest answered %q, %v", answer[0], err)
			}
		}},
		{"authentication exchange", (*rawClient).beginSCRAM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.conn.SetDeadline(time.Now().Add(3 * time.Second))
			start := time.Now()
			tc.stall(c)
			if _, err := io.Copy(io.Discard, c.conn); err != nil && !isReset(err) {
				t.Fatalf("connection not closed after %v: %v", time.Since(start), err)
			}
			if d := time.Since(start); d < timeout-50*time.Millisecond {
				t.Errorf("closed after %v, before the timeout", d)
			}
		})
	}
	selectOne(t, ctx, connect(t, ctx, ts.connString("pw", "")))
}

// A wrong password is answered only after AuthFailureDelay, and the wait
// holds up no one else.
func TestAuthFailureDelay(t *testing.T) {
	t.Parallel() // it mostly sleeps
	ctx := testContext(t)
	const delay = time.Second
	ts := startServer(t, wire.Config{Password: "pw", AuthFailureDelay: delay})

	c := dialRaw(t, ts)
	c.sendWrongProof()
	start := time.Now()

	conn := connect(t, ctx, ts.connString("pw", ""))
	selectOne(t, ctx, conn)
	if d := time.Since(start); d >= delay {
		t.Errorf("a right password took %v while a wrong one waited", d)
	}

	got := c.untilEOF()
	if d := time.Since(start); d < delay-50*time.Millisecond {
		t.Errorf("wrong password answered after %v, want at least %v", d, delay)
	}
	if len(got) != 1 || got[0] != `ErrorResponse FATAL 28P01 password authentication failed for user "alice"` {
		t.Errorf("got %q", got)
	}
}

// With the unauthenticated limit, the delay bounds how fast passwords can be
// guessed: MaxUnauthenticatedConnections per AuthFailureDelay. The others
// are refused at once instead of getting an answer about their password.
func TestAuthFailureDelayBoundsGuessRate(t *testing.T) {
	t.Parallel() // it mostly sleeps
	ctx := testContext(t)
	const limit, attempts = 2, 6
	ts := startServer(t, wire.Config{Password: "pw", AuthFailureDelay: time.Second, MaxUnauthenticatedConnections: limit})

	codes := make(chan string, attempts)
	var wg sync.WaitGroup
	start := time.Now()
	for range attempts {
		wg.Go(func() {
			_, err := pgx.Connect(ctx, ts.connString("guess", ""))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				codes <- "no PgError: " + err.Error()
				return
			}
			codes <- pe.Code
		})
	}
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for code := range codes {
		count[code]++
	}
	if count["28P01"] > limit || count["28P01"]+count["53300"] != attempts {
		t.Errorf("%d guesses within %v were answered %v; want at most %d 28P01, the rest 53300",
			attempts, time.Since(start), count, limit)
	}
}

func TestTLSRequired(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, wire.Config{Password: "pw", TLS: testcert.Config(t), TLSRequired: true})

	t.Run("refused before authentication", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(startupMessage(pgproto3.ProtocolVersion30))
		got := c.untilEOF()
		if len(got) != 1 || got[0] != "ErrorResponse FATAL 28000 pgcdc requires SSL: connect with sslmode=require" {
			t.Errorf("got %q, want only the 28000 FATAL (no authentication request)", got)
		}
	})
	t.Run("after GSSENCRequest", func(t *testing.T) {
		c := dialRaw(t, ts)
		b, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
		c.conn.Write(b)
		var answer [1]byte
		if _, err := io.ReadFull(c.conn, answer[:]); err != nil || answer[0] != 'N' {
			t.Fatalf("GSSENCRequest answered %q, %v", answer[0], err)
		}
		c.send(startupMessage(pgproto3.ProtocolVersion30))
		if got := c.untilEOF(); len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse FATAL 28000 ") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("pgx sslmode=disable", func(t *testing.T) {
		_, err := pgx.Connect(ctx, ts.connString("pw", "sslmode=disable"))
		pe := wantPgError(t, err, "28000")
		if pe.Severity != "FATAL" || pe.Detail != `no encryption for host "127.0.0.1", user "alice", database "appdb"` {
			t.Errorf("got %s %q detail %q", pe.Severity, pe.Message, pe.Detail)
		}
	})
	for _, params := range []string{"sslmode=require", "sslmode=prefer", "sslmode=require&sslnegotiation=direct"} {
		t.Run(params, func(t *testing.T) {
			conn := connect(t, ctx, ts.connString("pw", params))
			if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
			}
			selectOne(t, ctx, conn)
		})
	}
}

func TestServeRefusesTLSRequiredWithoutTLS(t *testing.T) {
	srv := wire.NewServer(wire.Config{Password: "pw", TLSRequired: true}, newFakeHandler(), testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ctx, ln); !errors.Is(err, wire.ErrTLSNotConfigured) {
		t.Fatalf("Serve = %v, want ErrTLSNotConfigured", err)
	}
}
