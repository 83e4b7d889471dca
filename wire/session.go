package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rs/zerolog"
)

// flushThreshold is how much output is buffered before it is written even
// without Sync or Flush, so a large result streams in bounded memory.
const flushThreshold = 64 << 10

// session is one authenticated connection. Its serve goroutine owns all
// protocol state; a second goroutine reads client messages (see readLoop);
// CancelRequest and Shutdown reach in only through cancelRunning and
// cancel.
type session struct {
	srv     *Server
	conn    net.Conn
	backend *pgproto3.Backend
	out     *messageWriter
	log     zerolog.Logger
	info    SessionInfo
	handler SessionHandler
	fwd     *forwarding // set for a forwarded session (forward.go)
	types   *pgtype.Map
	pid     uint32
	secret  []byte

	// ctx lives as long as the connection; every statement context derives
	// from it. Its cause says why it ended: errConnLost, errShutdown.
	ctx    context.Context
	cancel context.CancelCauseFunc

	in         chan inbound
	done       chan struct{} // closed when serve returns
	readerDone chan struct{}

	runMu   sync.Mutex
	running context.CancelCauseFunc // what a CancelRequest cancels now

	statements map[string]*preparedStatement
	portals    map[string]*portal
	skipToSync bool // an extended-protocol error happened; discard until Sync
	idle       bool // ReadyForQuery sent and nothing received since
	txStatus   byte
	// readErr is a read error that ended a COPY FROM STDIN; the message
	// loop reports it next.
	readErr error

	rowBuf []byte
	values [][]byte
}

type inbound struct {
	msg pgproto3.FrontendMessage
	err error
}

func (s *Server) newSession(ctx context.Context, st *startup, log zerolog.Logger) (*session, error) {
	sess := &session{
		srv:        s,
		conn:       st.conn,
		backend:    st.backend,
		out:        st.out,
		info:       st.info,
		types:      pgtype.NewMap(),
		in:         make(chan inbound),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		statements: make(map[string]*preparedStatement),
		portals:    make(map[string]*portal),
		rowBuf:     make([]byte, 0, 1024),
		secret:     make([]byte, 4),
	}
	sess.ctx, sess.cancel = context.WithCancelCause(ctx)
	putUint32(sess.secret, randomUint32())

	var preferredPID uint32
	if s.forwarder != nil {
		up, err := s.forwarder.Forward(sess.ctx, st.info)
		if err != nil {
			return nil, sess.refuse(st, err)
		}
		sess.fwd = newForwarding(sess, up)
		sess.handler = forwardHandler{sess.fwd}
		preferredPID = up.ProcessID()
	} else {
		h, err := s.handler.NewSession(sess.ctx, st.info)
		if err != nil {
			return nil, sess.refuse(st, err)
		}
		sess.handler = h
	}
	// The session must be complete before register publishes it to
	// CancelRequest and Shutdown.
	s.register(sess, preferredPID, func(pid uint32) {
		sess.log = log.With().Uint32("pid", pid).Logger()
		sess.out.log = sess.log
	})
	return sess, nil
}

// refuse answers a session the handler would not open with FATAL.
func (sess *session) refuse(st *startup, err error) error {
	sess.cancel(err)
	pe := toPgError(context.Background(), err)
	pe.Severity = severityFatal
	st.reject(pe)
	return err
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// serve runs the session until the client leaves or the session must end,
// and always releases it.
func (sess *session) serve() {
	defer sess.release()
	defer func() {
		if r := recover(); r != nil {
			sess.log.Error().Interface("panic", r).Str("stack", string(debug.Stack())).Msg("wire: session panicked")
			sess.out.send(errorResponse(fatalf(codeInternalError, "internal error: %v", r)))
			sess.out.flush()
		}
	}()
	sess.log.Debug().Str("application", sess.info.Application).Bool("forwarded", sess.fwd != nil).Msg("wire: session started")

	if sess.fwd != nil {
		err := sess.fwd.run()
		close(sess.readerDone) // the forwarding goroutines have ended
		sess.logEnd(err)
		return
	}
	for _, p := range [][2]string{
		{"server_version", sess.srv.cfg.ServerVersion},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"},
		{"IntervalStyle", "postgres"},
		{"is_superuser", "off"},
		{"session_authorization", sess.info.User},
		{"application_name", sess.info.Application},
		{"default_transaction_read_only", "off"},
		{"in_hot_standby", "off"},
	} {
		sess.out.send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	sess.out.send(&pgproto3.BackendKeyData{ProcessID: sess.pid, SecretKey: sess.secret})
	sess.readyForQuery()

	go sess.readLoop()
	sess.logEnd(sess.loop())
}

// logEnd logs why the session ended.
func (sess *session) logEnd(err error) {
	var end *sessionEnd
	switch {
	case err == nil:
	case errors.As(err, &end) && errors.Is(end.err, errConnLost):
		sess.log.Debug().Msg("wire: client connection lost")
	default:
		sess.log.Debug().Err(err).Msg("wire: session ended")
	}
}

// end closes a session that never got to serve.
func (sess *session) end(e *pgconn.PgError) {
	sess.out.send(errorResponse(e))
	sess.out.flush()
	close(sess.readerDone) // no reader was started
	sess.release()
}

// release tears the session down; it runs exactly once.
func (sess *session) release() {
	close(sess.done)
	for name, p := range sess.portals {
		p.close()
		delete(sess.portals, name)
	}
	sess.cancel(errConnLost)
	if err := sess.handler.Close(); err != nil {
		sess.log.Warn().Err(err).Msg("wire: closing session handler")
	}
	sess.srv.unregister(sess)
	sess.conn.Close()
	<-sess.readerDone
	sess.log.Debug().Msg("wire: session closed")
}

// loop dispatches client messages until the session ends. It returns nil
// for Terminate.
func (sess *session) loop() error {
	for {
		msg, err := sess.receive()
		if err != nil {
			return err
		}
		if sess.skipToSync {
			switch msg.(type) {
			case *pgproto3.Sync, *pgproto3.Terminate:
			default:
				continue
			}
		}
		if err := sess.dispatch(msg); err != nil {
			if errors.Is(err, errTerminate) {
				return nil
			}
			return err
		}
		if err := sess.out.error(); err != nil {
			return &sessionEnd{errConnLost}
		}
	}
}

var errTerminate = errors.New("terminate")

func (sess *session) dispatch(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Query:
		return sess.simpleQuery(m.String)
	case *pgproto3.Parse:
		return sess.parse(m)
	case *pgproto3.Bind:
		return sess.bind(m)
	case *pgproto3.Describe:
		return sess.describe(m)
	case *pgproto3.Execute:
		return sess.execute(m)
	case *pgproto3.Close:
		return sess.closeObject(m)
	case *pgproto3.Sync:
		return sess.sync()
	case *pgproto3.Flush:
		sess.out.flush()
		return nil
	case *pgproto3.Terminate:
		return errTerminate
	case *pgproto3.FunctionCall:
		if err := sess.fail(context.Background(), errorf(codeFeatureNotSupported, "fastpath function calls are not supported")); err != nil {
			return err
		}
		sess.readyForQuery()
		return nil
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
		// Postgres ignores these outside COPY: a client may still be
		// sending the tail of a COPY that failed.
		return nil
	default:
		return sess.protocolViolation(fmt.Errorf("unexpected message type %T", msg))
	}
}

// receive waits for the next client message. While the session is idle it
// also watches the idle timeout and Shutdown, which end a session only
// between commands.
func (sess *session) receive() (pgproto3.FrontendMessage, error) {
	var idleTimeout <-chan time.Time
	var shutdown <-chan struct{}
	if sess.idle {
		if d := sess.srv.cfg.IdleSessionTimeout; d > 0 && sess.txStatus == 'I' {
			t := time.NewTimer(d)
			defer t.Stop()
			idleTimeout = t.C
		}
		if sess.txStatus != 'T' {
			shutdown = sess.srv.shutdown
		}
	}
	if err := sess.readErr; err != nil {
		sess.readErr = nil
		return nil, sess.readError(err)
	}
	select {
	case in := <-sess.in:
		sess.idle = false
		if in.err != nil {
			return nil, sess.readError(in.err)
		}
		return in.msg, nil
	case <-idleTimeout:
		sess.log.Info().Msg("wire: idle session timeout")
		return nil, sess.fatal(fatalf(codeIdleSessionTimeout, "terminating connection due to idle-session timeout"))
	case <-shutdown:
		return nil, sess.fatal(fatalf(codeAdminShutdown, "terminating connection due to administrator command"))
	case <-sess.ctx.Done():
		if errors.Is(context.Cause(sess.ctx), errConnLost) {
			// The reader cancelled and is about to report why.
			in := <-sess.in
			return nil, sess.readError(in.err)
		}
		return nil, sess.fatal(toPgError(sess.ctx, context.Cause(sess.ctx)))
	}
}

// readError turns a failed read into the end of the session. A message we
// cannot parse gets FATAL 08P01, as in Postgres; the rest of the server is
// unaffected.
func (sess *session) readError(err error) error {
	if err == nil {
		err = errConnLost
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// Also a clean hang-up without Terminate: Receive cannot tell them
		// apart, and the FATAL is harmless on a closed socket.
		sess.out.send(errorResponse(fatalf(codeProtocolViolation, "unexpected EOF on client connection")))
		sess.out.flush()
		return &sessionEnd{errConnLost}
	}
	if isConnError(err) {
		return &sessionEnd{errConnLost}
	}
	return sess.protocolViolation(err)
}

func (sess *session) protocolViolation(err error) error {
	sess.log.Info().Err(err).Msg("wire: protocol violation")
	msg := "invalid frontend message: " + err.Error()
	var tooBig *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &tooBig) {
		msg = fmt.Sprintf("invalid message length: %d bytes exceeds the maximum of %d", tooBig.ActualBodyLen, tooBig.MaxExpectedBodyLen)
	}
	return sess.fatal(fatalf(codeProtocolViolation, "%s", msg))
}

func isConnError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || errors.Is(err, errConnLost)
}

// fatal sends a FATAL error and returns the error that ends the session.
func (sess *session) fatal(e *pgconn.PgError) error {
	sess.out.send(errorResponse(e))
	sess.out.flush()
	return &sessionEnd{e}
}

// readLoop reads client messages ahead of the serve goroutine. Reading
// while a statement runs is what lets a hang-up cancel that statement; the
// unbuffered channel keeps read-ahead to one message.
func (sess *session) readLoop() {
	defer close(sess.readerDone)
	for {
		msg, err := sess.receiveOne()
		if err != nil {
			if isConnError(err) || errors.Is(err, io.ErrUnexpectedEOF) {
				sess.cancel(errConnLost)
			}
			select {
			case sess.in <- inbound{err: err}:
			case <-sess.done:
			}
			return
		}
		if e := sess.log.Trace(); e.Enabled() {
			e.Str("from", "client").Interface("msg", msg).Msg("wire: message")
		}
		select {
		case sess.in <- inbound{msg: msg}:
		case <-sess.done:
			return
		}
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return
		}
	}
}

// receiveOne returns a message the caller may keep: Backend.Receive reuses
// its message structs and buffers on the next call.
func (sess *session) receiveOne() (msg pgproto3.FrontendMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message: %v", r)
		}
	}()
	m, err := sess.backend.Receive()
	if err != nil {
		return nil, err
	}
	return copyMessage(m), nil
}

func copyMessage(msg pgproto3.FrontendMessage) pgproto3.FrontendMessage {
	switch m := msg.(type) {
	case *pgproto3.Query:
		c := *m
		return &c
	case *pgproto3.Parse:
		c := *m
		c.ParameterOIDs = append([]uint32(nil), m.ParameterOIDs...)
		return &c
	case *pgproto3.Bind:
		c := *m
		c.ParameterFormatCodes = append([]int16(nil), m.ParameterFormatCodes...)
		c.ResultFormatCodes = append([]int16(nil), m.ResultFormatCodes...)
		c.Parameters = make([][]byte, len(m.Parameters))
		for i, p := range m.Parameters {
			if p != nil {
				c.Parameters[i] = append([]byte{}, p...)
			}
		}
		return &c
	case *pgproto3.Describe:
		c := *m
		return &c
	case *pgproto3.Execute:
		c := *m
		return &c
	case *pgproto3.Close:
		c := *m
		return &c
	case *pgproto3.Sync:
		return &pgproto3.Sync{}
	case *pgproto3.Flush:
		return &pgproto3.Flush{}
	case *pgproto3.Terminate:
		return &pgproto3.Terminate{}
	case *pgproto3.FunctionCall:
		return &pgproto3.FunctionCall{} // only refused, never read
	case *pgproto3.CopyData:
		return &pgproto3.CopyData{Data: bytes.Clone(m.Data)}
	case *pgproto3.CopyDone:
		return &pgproto3.CopyDone{}
	case *pgproto3.CopyFail:
		c := *m
		return &c
	}
	return msg
}

// readyForQuery ends a command cycle.
func (sess *session) readyForQuery() {
	tx := sess.handler.TxStatus()
	switch tx {
	case 'I', 'T', 'E':
	default:
		tx = 'I'
	}
	sess.txStatus = tx
	sess.closePortalsOutsideTx(tx)
	sess.out.send(&pgproto3.ReadyForQuery{TxStatus: tx})
	sess.out.flush()
	sess.idle = true
}

// beginStatement returns the context for one unit of handler work and makes
// it the target of CancelRequest until end is called.
func (sess *session) beginStatement(parent context.Context) (ctx context.Context, end func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sess.setRunning(cancel)
	return ctx, func() {
		sess.setRunning(nil)
		cancel(context.Canceled)
	}
}

func (sess *session) setRunning(cancel context.CancelCauseFunc) {
	sess.runMu.Lock()
	sess.running = cancel
	sess.runMu.Unlock()
}

// cancelRunning cancels the statement running now: one the handler runs,
// or, in a forwarded session with none of those, what runs upstream.
func (sess *session) cancelRunning() {
	sess.runMu.Lock()
	defer sess.runMu.Unlock()
	if sess.running != nil {
		sess.running(errQueryCanceled)
		return
	}
	if sess.fwd != nil {
		go sess.fwd.cancelUpstream()
	}
}

// fail reports err as an ErrorResponse. It returns non-nil when the session
// must end: the error was FATAL, or the client is gone.
func (sess *session) fail(ctx context.Context, err error) error {
	if ctx != nil && errors.Is(context.Cause(ctx), errConnLost) {
		return &sessionEnd{errConnLost}
	}
	pe := toPgError(ctx, err)
	sess.handler.Failed(pe)
	if pe.Code == codeInternalError {
		sess.log.Warn().Err(err).Msg("wire: statement failed")
	} else {
		sess.log.Debug().Str("sqlstate", pe.Code).Str("message", pe.Message).Msg("wire: statement failed")
	}
	// Postgres flushes every error at once (send_message_to_frontend), even
	// in the extended protocol, where it then ignores Flush until Sync: a
	// client (or a proxy) waiting for the answers to what it sent before a
	// Flush must get the error without sending Sync.
	sess.out.sendFlush(errorResponse(pe))
	if isFatal(pe) {
		return &sessionEnd{pe}
	}
	return nil
}

// notifier delivers NOTICEs for the session. It may be called from any
// goroutine, at any time: NoticeResponse is asynchronous in the protocol.
type notifier struct{ sess *session }

func (n notifier) Notice(severity, message string) {
	severity = strings.ToUpper(severity)
	if severity == "" {
		severity = "NOTICE"
	}
	code := "00000"
	if severity == "WARNING" {
		code = "01000"
	}
	n.sess.out.sendFlush(&pgproto3.NoticeResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: message})
}

func (n notifier) ParameterStatus(name, value string) {
	n.sess.out.send(&pgproto3.ParameterStatus{Name: name, Value: value})
}

// messageWriter buffers backend messages. It is shared by the serve
// goroutine and notifiers, hence the mutex; the first write error sticks,
// and later sends are dropped.
type messageWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
	log zerolog.Logger
}

func newMessageWriter(w io.Writer, log zerolog.Logger) *messageWriter {
	return &messageWriter{w: w, log: log}
}

func (w *messageWriter) send(msg pgproto3.BackendMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sendLocked(msg)
	if len(w.buf) >= flushThreshold {
		w.flushLocked()
	}
}

func (w *messageWriter) sendFlush(msg pgproto3.BackendMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sendLocked(msg)
	w.flushLocked()
}

func (w *messageWriter) sendLocked(msg pgproto3.BackendMessage) {
	if w.err != nil {
		return
	}
	if e := w.log.Trace(); e.Enabled() {
		e.Str("from", "server").Interface("msg", msg).Msg("wire: message")
	}
	buf, err := msg.Encode(w.buf)
	if err != nil {
		w.err = fmt.Errorf("encode %T: %w", msg, err)
		return
	}
	w.buf = buf
}

func (w *messageWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *messageWriter) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	if err != nil {
		w.err = err
	}
	if cap(w.buf) > 4*flushThreshold {
		w.buf = nil
	} else {
		w.buf = w.buf[:0]
	}
	return err
}

// writeRaw writes frames that are already encoded, after whatever is
// buffered, at once.
func (w *messageWriter) writeRaw(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		w.buf = append(w.buf, p...)
		return w.flushLocked()
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = err
	}
	return w.err
}

func (w *messageWriter) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
