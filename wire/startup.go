package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"
)

// Startup packet codes (the "protocol version" field of special requests).
const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102

	protocolMajor = 3
	protocolMinor = 0

	// maxStartupPacket is Postgres' MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10000

	alpnProtocol = "postgresql"

	tlsRecordHandshake = 0x16
)

// startup is a connection that has sent its StartupMessage.
type startup struct {
	conn      net.Conn // TLS-wrapped when negotiated
	encrypted bool
	backend   *pgproto3.Backend
	out       *messageWriter
	info      SessionInfo

	serverFinal string // SCRAM server-final-message, sent by authenticationOk
}

// reject sends a FATAL error; the caller then closes the connection.
func (st *startup) reject(e *pgconn.PgError) {
	st.out.send(errorResponse(e))
	st.out.flush()
}

// startup runs the part of the protocol that comes before authentication:
// encryption negotiation, CancelRequest and the StartupMessage. It reads the
// raw connection without buffering, so nothing a client sends before the
// TLS handshake can be read back as if it had been encrypted.
// It returns nil, nil for a connection that was a CancelRequest.
func (s *Server) startup(conn net.Conn, log zerolog.Logger) (*startup, error) {
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, err
	}
	var r io.Reader = io.MultiReader(bytes.NewReader(first[:]), conn)
	encrypted := false
	if first[0] == tlsRecordHandshake {
		// sslnegotiation=direct: the TLS ClientHello comes first.
		if s.tls == nil {
			return nil, errors.New("direct TLS connection but TLS is not configured")
		}
		tc := tls.Server(&replayConn{Conn: conn, prefix: first[:]}, s.tls)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		if tc.ConnectionState().NegotiatedProtocol != alpnProtocol {
			// Postgres insists, so a generic TLS client cannot be tricked
			// into talking to us.
			return nil, errors.New("direct TLS connection without ALPN postgresql")
		}
		conn, r, encrypted = tc, tc, true
	}
	gssAnswered := false
	for {
		if r == nil {
			r = conn // which may have become TLS since the last packet
		}
		code, body, err := readStartupPacket(r)
		if err != nil {
			writeFatal(conn, codeProtocolViolation, err.Error())
			return nil, err
		}
		r = nil
		switch code {
		case sslRequestCode:
			if encrypted {
				writeFatal(conn, codeProtocolViolation, "SSLRequest on an encrypted connection")
				return nil, errors.New("repeated SSLRequest")
			}
			if s.tls == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(conn, s.tls)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			conn, encrypted = tc, true
		case gssEncRequestCode:
			if encrypted || gssAnswered {
				writeFatal(conn, codeProtocolViolation, "unexpected GSSENCRequest")
				return nil, errors.New("repeated GSSENCRequest")
			}
			gssAnswered = true
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case cancelRequestCode:
			if len(body) < 8 {
				return nil, errors.New("short CancelRequest")
			}
			s.cancelRequest(binary.BigEndian.Uint32(body[:4]), body[4:], log)
			return nil, nil
		default:
			return s.startupMessage(conn, encrypted, code, body)
		}
	}
}

// startupMessage handles a StartupMessage. Any 3.x client may connect: one
// asking for a newer minor version, or sending protocol options (_pq_.*),
// is told what we speak through NegotiateProtocolVersion and continues in
// 3.0, as Postgres does.
func (s *Server) startupMessage(conn net.Conn, encrypted bool, code uint32, body []byte) (*startup, error) {
	major, minor := code>>16, code&0xffff
	if major != protocolMajor {
		msg := fmt.Sprintf("unsupported frontend protocol %d.%d: server supports %d.0 to %d.%d", major, minor, protocolMajor, protocolMajor, protocolMinor)
		writeFatal(conn, codeFeatureNotSupported, msg)
		return nil, errors.New(msg)
	}
	params, err := parseStartupParameters(body)
	if err != nil {
		writeFatal(conn, codeProtocolViolation, err.Error())
		return nil, err
	}
	st := &startup{conn: conn, encrypted: encrypted}
	st.backend = pgproto3.NewBackend(conn, conn)
	st.backend.SetMaxBodyLen(s.cfg.MaxMessageSize)
	st.out = newMessageWriter(conn, zerolog.Nop())

	var unrecognized []string
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			unrecognized = append(unrecognized, k)
			delete(params, k)
		}
	}
	if minor > protocolMinor || len(unrecognized) > 0 {
		st.out.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: protocolMinor, UnrecognizedOptions: unrecognized})
	}
	user := params["user"]
	if user == "" {
		st.reject(fatalf(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet"))
		return nil, errors.New("no user name")
	}
	db := params["database"]
	if db == "" {
		db = user
	}
	st.info = SessionInfo{
		User:        user,
		Database:    db,
		Application: params["application_name"],
		RemoteAddr:  conn.RemoteAddr().String(),
		Parameters:  params,

		ServerVersion: s.cfg.ServerVersion,
	}
	return st, nil
}

// readStartupPacket reads one length-prefixed, untyped startup packet and
// returns its code (protocol version or request code) and the rest.
func readStartupPacket(r io.Reader) (uint32, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if n < 8 || n > maxStartupPacket {
		return 0, nil, fmt.Errorf("invalid length of startup packet: %d", n)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return 0, nil, fmt.Errorf("incomplete startup packet: %w", err)
	}
	body := make([]byte, n-8)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("incomplete startup packet: %w", err)
	}
	return binary.BigEndian.Uint32(hdr[4:]), body, nil
}

func parseStartupParameters(b []byte) (map[string]string, error) {
	params := make(map[string]string)
	for {
		if len(b) == 0 {
			return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
		}
		if b[0] == 0 {
			if len(b) != 1 {
				return nil, errors.New("invalid startup packet layout: data after terminator")
			}
			return params, nil
		}
		k, rest, ok := bytes.Cut(b, []byte{0})
		if !ok {
			return nil, errors.New("invalid startup packet layout: unterminated parameter name")
		}
		v, rest, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return nil, errors.New("invalid startup packet layout: unterminated parameter value")
		}
		params[string(k)] = string(v)
		b = rest
	}
}

// writeFatal answers a connection that never got as far as a messageWriter.
func writeFatal(w io.Writer, code, msg string) {
	buf, err := errorResponse(fatalf(code, "%s", msg)).Encode(nil)
	if err == nil {
		w.Write(buf)
	}
}

// noEncryptionError is what a client that did not negotiate TLS gets when
// TLS is required: Postgres' hostssl refusal, 28000, with the fix in the
// message since the client is most likely just missing sslmode.
func noEncryptionError(info SessionInfo) *pgconn.PgError {
	host, _, err := net.SplitHostPort(info.RemoteAddr)
	if err != nil {
		host = info.RemoteAddr
	}
	e := fatalf(codeInvalidAuthorization, "pgcdc requires SSL: connect with sslmode=require")
	e.Detail = fmt.Sprintf("no encryption for host \"%s\", user \"%s\", database \"%s\"", host, info.User, info.Database)
	return e
}

// authenticate runs trust or SCRAM-SHA-256 up to the client's proof. The
// rest (server-final-message and AuthenticationOk) is sent by
// authenticationOk once the connection has a slot.
func (s *Server) authenticate(st *startup, log zerolog.Logger) error {
	if s.verifier == nil {
		return nil
	}
	fail := func(e *pgconn.PgError) error {
		st.reject(e)
		return e
	}
	st.out.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}})
	if err := st.out.flush(); err != nil {
		return err
	}
	st.backend.SetAuthType(pgproto3.AuthTypeSASL)
	msg, err := st.backend.Receive()
	if err != nil {
		// psql hangs up here to prompt for a password: not worth a FATAL.
		return authReadError(st, err)
	}
	initial, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return fail(fatalf(codeProtocolViolation, "expected SASL response, got message type %T", msg))
	}
	if initial.AuthMechanism != scramMechanism {
		return fail(fatalf(codeProtocolViolation, "client selected an invalid SASL authentication mechanism"))
	}
	x := &scramExchange{v: s.verifier}
	serverFirst, err := x.handleClientFirst(string(initial.Data))
	if err != nil {
		return fail(toPgError(context.Background(), err))
	}
	st.out.send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := st.out.flush(); err != nil {
		return err
	}
	st.backend.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = st.backend.Receive()
	if err != nil {
		return authReadError(st, err)
	}
	final, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fail(fatalf(codeProtocolViolation, "expected SASL response, got message type %T", msg))
	}
	serverFinal, err := x.handleClientFinal(string(final.Data))
	if errors.Is(err, errPasswordMismatch) {
		s.delayAuthFailure(st.conn)
		return fail(fatalf(codeInvalidPassword, "password authentication failed for user \"%s\"", st.info.User))
	}
	if err != nil {
		return fail(toPgError(context.Background(), err))
	}
	st.backend.SetAuthType(pgproto3.AuthTypeOk)
	st.serverFinal = serverFinal
	log.Debug().Msg("wire: authenticated")
	return nil
}

// authenticationOk ends a successful authentication exchange.
func (st *startup) authenticationOk() {
	if st.serverFinal != "" {
		st.out.send(&pgproto3.AuthenticationSASLFinal{Data: []byte(st.serverFinal)})
	}
	st.out.send(&pgproto3.AuthenticationOk{})
}

// delayAuthFailure holds back the answer to a wrong password, as Postgres'
// auth_delay does. The connection keeps its unauthenticated slot while it
// waits, even if the client hangs up, so guesses cannot come faster than
// MaxUnauthenticatedConnections per AuthFailureDelay. Only this
// connection's goroutine waits; Shutdown cuts the wait short.
func (s *Server) delayAuthFailure(conn net.Conn) {
	if s.cfg.AuthFailureDelay <= 0 {
		return
	}
	t := time.NewTimer(s.cfg.AuthFailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.shutdown:
	}
	conn.SetWriteDeadline(time.Now().Add(authFailureWriteTimeout))
}

func authReadError(st *startup, err error) error {
	if isConnError(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	st.reject(fatalf(codeProtocolViolation, "invalid authentication message: %v", err))
	return err
}

// replayConn puts back the byte read to detect direct TLS.
type replayConn struct {
	net.Conn
	prefix []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func randomUint32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
