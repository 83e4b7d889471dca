package wire

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const (
	defaultMaxMessageSize                = 64 << 20
	defaultMaxConnections                = 100
	defaultMaxUnauthenticatedConnections = 32
	defaultAuthenticationTimeout         = 10 * time.Second
	defaultServerVersion                 = "16.0"

	// refuseWriteTimeout bounds writing FATAL 53300 to a connection over
	// the unauthenticated limit: the accept loop writes it and must never
	// wait on a client.
	refuseWriteTimeout = 100 * time.Millisecond

	// refusedLogInterval spaces the warnings about refused connections, so
	// that a flood of connections does not become a flood of log lines.
	refusedLogInterval = 10 * time.Second

	// authFailureWriteTimeout bounds sending 28P01 after the auth failure
	// delay, which may have outlasted the authentication timeout.
	authFailureWriteTimeout = time.Second

	// forceCloseGrace is how long Shutdown lets cancelled sessions send their
	// FATAL message before it closes their sockets.
	forceCloseGrace = time.Second
)

// Server accepts Postgres clients and runs one session per connection,
// handing the statements to a Handler.
type Server struct {
	cfg       Config
	handler   Handler
	forwarder Forwarder // set by NewForwardingServer; then handler is nil
	log       zerolog.Logger
	tls       *tls.Config
	verifier  *scramVerifier // nil means trust
	initErr   error

	mu              sync.Mutex
	closed          bool
	listeners       map[net.Listener]struct{}
	conns           map[*serverConn]struct{}
	sessions        map[uint32]*session // by process ID, for CancelRequest
	unauthenticated int                 // connections in phaseUnauthenticated
	backends        int                 // connections in phaseAdmitted
	refused         int                 // over the unauthenticated limit since refusedLogged
	refusedLogged   time.Time
	wg              sync.WaitGroup
	shutdown        chan struct{} // closed by Shutdown
}

// serverConn is one accepted connection, tracked so that Shutdown can reach
// it whatever phase it is in.
type serverConn struct {
	raw   net.Conn
	phase connPhase // guarded by Server.mu
	sess  *session  // set once the session is established; guarded by Server.mu
}

// connPhase says which limit a connection counts against. The two limits
// are kept apart so that clients that have not proved they know the
// password can never take the slots of those that have.
type connPhase int

const (
	phaseUnauthenticated connPhase = iota // from accept: MaxUnauthenticatedConnections
	phaseAdmitted                         // authenticated: MaxConnections
	phaseUncounted                        // refused after authenticating
)

// NewServer returns a Server; zero Config fields take their defaults.
func NewServer(cfg Config, h Handler, log zerolog.Logger) *Server {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = defaultMaxMessageSize
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = defaultMaxConnections
	}
	if cfg.MaxUnauthenticatedConnections <= 0 {
		cfg.MaxUnauthenticatedConnections = defaultMaxUnauthenticatedConnections
	}
	if cfg.AuthenticationTimeout <= 0 {
		cfg.AuthenticationTimeout = defaultAuthenticationTimeout
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = defaultServerVersion
	}
	s := &Server{
		cfg:       cfg,
		handler:   h,
		log:       log,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
		sessions:  make(map[uint32]*session),
		shutdown:  make(chan struct{}),
	}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
		// libpq 17+ and pgx send ALPN "postgresql" and direct-TLS clients
		// require it to be echoed.
		if !slices.Contains(s.tls.NextProtos, alpnProtocol) {
			s.tls.NextProtos = append(s.tls.NextProtos, alpnProtocol)
		}
	}
	if cfg.Password != "" {
		s.verifier, s.initErr = newSCRAMVerifier(cfg.Password)
	}
	if cfg.TLSRequired && cfg.TLS == nil {
		s.initErr = ErrTLSNotConfigured
	}
	return s
}

// Serve accepts connections on ln until ctx is cancelled or Shutdown is
// called, and then returns nil. Cancelling ctx only stops accepting: open
// sessions keep running until they end or Shutdown ends them. Serve closes
// ln. It refuses trust authentication on a listener other hosts can reach,
// and TLSRequired without TLS.
// Serve may be called for several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.initErr != nil {
		ln.Close()
		return s.initErr
	}
	if s.verifier == nil && !isLocalAddr(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("%w: %s", ErrTrustNotLoopback, ln.Addr())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	// Sessions outlive ctx (see above) but keep its values.
	base := context.WithoutCancel(ctx)
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.tls != nil).Bool("tls_required", s.cfg.TLSRequired).
		Bool("scram", s.verifier != nil).Msg("wire: listening")
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("wire: accept: %w", err)
			}
			// EMFILE and friends pass; keep serving the clients we have.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("wire: accept failed")
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			case <-s.shutdown:
				return nil
			}
		}
		backoff = 0
		c := &serverConn{raw: conn, phase: phaseUnauthenticated}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		if s.unauthenticated >= s.cfg.MaxUnauthenticatedConnections {
			s.mu.Unlock()
			s.refuse(conn)
			continue
		}
		s.unauthenticated++
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(base, c)
	}
}

// refuse answers a connection over the unauthenticated limit the way
// Postgres answers one it cannot fork a backend for: an error written
// before reading anything, then close. Reading the startup packet first
// would need a goroutine per refused connection, which is what the limit
// is there to bound. A client that sent SSLRequest or a TLS ClientHello
// cannot read the message, but its connection fails all the same.
func (s *Server) refuse(conn net.Conn) {
	conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	writeFatal(conn, codeTooManyConnections, "sorry, too many clients already")
	conn.Close()

	s.mu.Lock()
	s.refused++
	now := time.Now()
	if now.Sub(s.refusedLogged) < refusedLogInterval {
		s.mu.Unlock()
		return
	}
	n := s.refused
	s.refused, s.refusedLogged = 0, now
	s.mu.Unlock()
	s.log.Warn().Int("max_unauthenticated_connections", s.cfg.MaxUnauthenticatedConnections).Int("refused", n).
		Msg("wire: too many connections still authenticating, refusing new ones")
}

// Shutdown stops accepting connections, ends idle sessions at once and lets
// running statements finish. When ctx expires it cancels the statements
// still running (their clients get FATAL 57P01) and closes their
// connections. It returns once every session has ended: ctx.Err() if it had
// to force them, nil otherwise.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shutdown)
		for ln := range s.listeners {
			ln.Close()
		}
	}
	for c := range s.conns {
		if c.sess == nil {
			// Still in startup: nothing to finish, nothing to say.
			c.raw.Close()
		}
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.log.Warn().Msg("wire: shutdown deadline passed, cancelling running statements")
	s.mu.Lock()
	for c := range s.conns {
		if c.sess != nil {
			c.sess.cancel(errShutdown)
		} else {
			c.raw.Close()
		}
	}
	s.mu.Unlock()
	select {
	case <-done:
		return ctx.Err()
	case <-time.After(forceCloseGrace):
	}
	s.mu.Lock()
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// isLocalAddr reports whether only this host can reach addr: loopback TCP
// or a unix socket (whose access the file system controls).
func isLocalAddr(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().IsLoopback()
	}
	return false
}

func (s *Server) serveConn(ctx context.Context, c *serverConn) {
	log := s.log.With().Str("remote", c.raw.RemoteAddr().String()).Logger()
	defer func() {
		if r := recover(); r != nil {
			log.Error().Interface("panic", r).Str("stack", string(debug.Stack())).Msg("wire: connection handler panicked")
		}
		// The slot is free before the client sees the connection close,
		// so a client that reconnects at once finds it free.
		s.mu.Lock()
		delete(s.conns, c)
		s.setPhase(c, phaseUncounted)
		s.mu.Unlock()
		c.raw.Close()
		s.wg.Done()
	}()

	// One deadline for everything before the session, whatever the client
	// spends it on, so an unauthenticated connection gives its slot back
	// within AuthenticationTimeout (plus AuthFailureDelay).
	c.raw.SetDeadline(time.Now().Add(s.cfg.AuthenticationTimeout))
	st, err := s.startup(c.raw, log)
	if err != nil {
		s.logAuthError(log, err, "wire: startup failed")
		return
	}
	if st == nil {
		return // a CancelRequest, already handled
	}
	log = log.With().Str("user", st.info.User).Str("database", st.info.Database).Logger()

	if s.cfg.TLSRequired && !st.encrypted {
		log.Info().Msg("wire: refused a connection without TLS")
		st.reject(noEncryptionError(st.info))
		return
	}
	if err := s.authenticate(st, log); err != nil {
		var pe interface{ SQLState() string }
		if errors.As(err, &pe) && pe.SQLState() == codeInvalidPassword {
			log.Warn().Msg("wire: password authentication failed")
		} else {
			s.logAuthError(log, err, "wire: authentication failed")
		}
		return
	}
	if !s.admit(c, st, log) {
		return
	}
	st.authenticationOk()
	c.raw.SetDeadline(time.Time{})

	sess, err := s.newSession(ctx, st, log)
	if err != nil {
		log.Info().Err(err).Msg("wire: session not opened")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sess.end(fatalf(codeCannotConnectNow, "the database system is shutting down"))
		return
	}
	c.sess = sess
	s.mu.Unlock()
	sess.serve()
}

// logAuthError logs why a connection ended before its session, at debug
// level: a flood of half-open connections must not flood the log.
func (s *Server) logAuthError(log zerolog.Logger, err error, msg string) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		log.Debug().Dur("authentication_timeout", s.cfg.AuthenticationTimeout).Msg("wire: authentication timed out")
		return
	}
	log.Debug().Err(err).Msg(msg)
}

// admit moves an authenticated connection from the unauthenticated limit
// to a MaxConnections slot, or refuses it. It runs before AuthenticationOk
// is sent, so a refused client sees only the FATAL, as in Postgres.
func (s *Server) admit(c *serverConn, st *startup, log zerolog.Logger) bool {
	s.mu.Lock()
	switch {
	case s.closed:
		s.setPhase(c, phaseUncounted)
		s.mu.Unlock()
		st.reject(fatalf(codeCannotConnectNow, "the database system is shutting down"))
		return false
	case s.backends >= s.cfg.MaxConnections:
		s.setPhase(c, phaseUncounted)
		s.mu.Unlock()
		log.Warn().Int("max_connections", s.cfg.MaxConnections).Msg("wire: too many connections")
		st.reject(fatalf(codeTooManyConnections, "sorry, too many clients already"))
		return false
	}
	s.setPhase(c, phaseAdmitted)
	s.mu.Unlock()
	return true
}

// setPhase moves c between the counts of the two limits; s.mu is held.
func (s *Server) setPhase(c *serverConn, p connPhase) {
	switch c.phase {
	case phaseUnauthenticated:
		s.unauthenticated--
	case phaseAdmitted:
		s.backends--
	}
	switch p {
	case phaseUnauthenticated:
		s.unauthenticated++
	case phaseAdmitted:
		s.backends++
	}
	c.phase = p
}

// register assigns a process ID to sess so CancelRequest can find it:
// preferred when it is free, else a fresh one. assigned runs before sess
// becomes visible to other goroutines.
func (s *Server) register(sess *session, preferred uint32, assigned func(pid uint32)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		pid := preferred & 0x7fffffff // clients store it as a signed int
		preferred = 0
		if pid == 0 {
			pid = randomUint32() & 0x7fffffff
		}
		if _, taken := s.sessions[pid]; pid != 0 && !taken {
			sess.pid = pid
			assigned(pid)
			s.sessions[pid] = sess
			return
		}
	}
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.pid] == sess {
		delete(s.sessions, sess.pid)
	}
}

// cancelRequest handles a CancelRequest: it never answers, as in Postgres,
// so a client cannot probe for valid process IDs.
func (s *Server) cancelRequest(pid uint32, secret []byte, log zerolog.Logger) {
	s.mu.Lock()
	sess := s.sessions[pid]
	s.mu.Unlock()
	if sess == nil || subtle.ConstantTimeCompare(sess.secret, secret) != 1 {
		log.Info().Uint32("pid", pid).Msg("wire: cancel request for no session")
		return
	}
	log.Info().Uint32("pid", pid).Msg("wire: cancel request")
	sess.cancelRunning()
}
