package wire

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"
)

// Forwarder opens the upstream side of forwarded sessions: a server built
// with NewForwardingServer is a transparent proxy in front of a Postgres
// server (the upstream), and forwards each client session, message by
// message, to an upstream session of its own.
type Forwarder interface {
	// Forward opens an upstream session for an authenticated client. An
	// error refuses the client with FATAL; a *pgconn.PgError keeps its
	// SQLSTATE and message.
	Forward(ctx context.Context, info SessionInfo) (Upstream, error)
}

// Upstream is one client session's connection to the upstream server.
type Upstream interface {
	// Conn is the connection, authenticated and ready for query. From
	// here on wire alone reads and writes it, raw.
	Conn() net.Conn
	// Parameters are the settings the upstream reported at startup
	// (ParameterStatus). The client gets them as its startup parameters.
	Parameters() map[string]string
	// ProcessID is the upstream backend's process ID. The client gets it
	// in BackendKeyData (with a secret key of wire's own) unless another
	// session already uses it, so that pg_backend_pid() and the PID in a
	// NotificationResponse agree with what the client was told.
	ProcessID() uint32
	// Intercept is asked about the query text of every Query and Parse
	// message. nil forwards the message unchanged. Otherwise the query is
	// run as the parts say, in order: a Part with a Statement is answered
	// by wire as a value-level session answers it, a Part with a Query is
	// forwarded as a statement of its own. An error fails the message
	// with that error, without forwarding anything.
	Intercept(ctx context.Context, query string, paramOIDs []uint32) ([]Part, error)
	// Cancel asks the upstream to cancel what this session runs there: a
	// CancelRequest with the upstream's own key.
	Cancel(ctx context.Context) error
	// Close closes the connection.
	Close() error
}

// Part is one statement of an intercepted query: answered by wire through
// Statement, or, when Statement is nil, forwarded as Query.
type Part struct {
	Query     string
	Statement Statement
}

// NewForwardingServer returns a Server that forwards every session to an
// upstream server opened by f, instead of running its statements through
// a Handler. Listener, TLS, authentication, limits, cancel keys and
// shutdown work as in NewServer.
func NewForwardingServer(cfg Config, f Forwarder, log zerolog.Logger) *Server {
	s := NewServer(cfg, nil, log)
	s.forwarder = f
	return s
}

// Forwarding: how a forwarded session works.
//
// Two goroutines move bytes. The client goroutine (the session's serve
// goroutine) reads client frames and writes them upstream; the upstream
// goroutine reads upstream frames and writes them to the client. Neither
// decodes rows: frames go through as they came, one read and one write
// per chunk. A third goroutine only watches Shutdown and the session's
// context.
//
// To answer some statements here, in order with the upstream's answers to
// the messages around them, the session keeps a queue of what the
// upstream owes: one expectation per forwarded message that the upstream
// answers (Parse: ParseComplete, Execute: CommandComplete, Sync:
// ReadyForQuery, ...). The upstream goroutine pops an expectation when
// its answer goes by. An ErrorResponse in the extended protocol makes the
// upstream skip everything up to the next Sync, so it pops those too, and
// remembers (upSkip) that what is forwarded before the next Sync will not
// be answered. Before answering a message itself the client goroutine
// drains: it sends a Flush, so the upstream answers what it holds, and
// waits until the queue is empty and the answers are written.
//
// Statement names stay the upstream's: a statement answered here is
// mirrored upstream by an empty statement of the same name, whose
// ParseComplete (or 42P05) the client gets, so duplicate names, the
// unnamed statement and DEALLOCATE behave as the upstream says.
//
// A statement answered here that fails leaves the client believing, as
// Postgres would, that the transaction failed; the upstream is made to
// agree by a Parse it cannot parse (abortUpstream), whose error the client
// never sees. ReadyForQuery is always the upstream's.

// expectKind is what the upstream answers a forwarded message with.
type expectKind uint8

const (
	expectParse    expectKind = iota + 1 // ParseComplete
	expectBind                           // BindComplete
	expectDescribe                       // RowDescription or NoData (a statement's after ParameterDescription)
	expectExecute                        // CommandComplete, EmptyQueryResponse or PortalSuspended
	expectClose                          // CloseComplete
	expectSync                           // ReadyForQuery, ending an extended batch
	expectQuery                          // ReadyForQuery after a Query or FunctionCall
)

// hideMode says which of the upstream's answers the client does not see.
type hideMode uint8

const (
	showAll  hideMode = iota
	hideDone          // statements of a split Query: no ParseComplete, BindComplete, NoData
	hideAll           // injected messages: nothing, errors included
)

type expect struct {
	kind expectKind
	hide hideMode
}

// abortStatement names the statement abortUpstream parses. It never
// exists: the Parse fails before its name is looked at.
const abortStatement = "wire: abort"

// errAborted is Postgres's answer to anything but ending the transaction
// block in a failed one.
var errAborted = errorf(codeInFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block")

// maxReadAhead bounds what watchClient buffers while a statement answered
// here runs.
const maxReadAhead = 1 << 20

// maxIdleBuffer is the largest read buffer a session keeps between large
// messages.
const maxIdleBuffer = 1 << 20

type forwarding struct {
	sess    *session
	up      Upstream
	upConn  net.Conn
	maxBody int
	trace   bool

	// Owned by the client goroutine.
	in        []byte   // client bytes not yet processed
	ahead     []byte   // client bytes read by watchClient
	aheadErr  error    // how watchClient's read ended, if not by its deadline
	out       []byte   // frames for the upstream, not yet written
	pending   []expect // expectations of the frames in out
	batchOpen bool     // extended messages forwarded since the last Sync
	seenIdle  uint64   // idleReady when local portals were last closed
	failed    error    // the error a statement answered here failed with
	copyEnds  uint64   // CopyDone and CopyFail messages forwarded

	mu         sync.Mutex
	queue      []expect
	upSkip     bool   // the upstream discards until the next Sync
	status     byte   // of the last ReadyForQuery
	completed  bool   // a CommandComplete since the last ReadyForQuery
	copyStarts uint64 // CopyInResponse messages seen
	idleReady  uint64
	writing    bool // the upstream goroutine is writing to the client
	local      bool // the client goroutine answers a message itself
	drained    chan struct{}
	ended      bool
	shutdown   atomic.Bool // Shutdown asked to end the session when it is idle
	lastFrame  byte        // type of the last frame relayed to the client
	idleTimer  *time.Timer
	activity   atomic.Uint64 // client reads, for the idle timeout
	timerArmed uint64

	endOnce sync.Once
	segs    [][]byte // upstream goroutine's scratch
	joined  []byte
}

func newForwarding(sess *session, up Upstream) *forwarding {
	return &forwarding{
		sess:    sess,
		up:      up,
		upConn:  up.Conn(),
		maxBody: sess.srv.cfg.MaxMessageSize,
		status:  'I',
		in:      make([]byte, 0, 16<<10),
	}
}

// forwardHandler is the SessionHandler of a forwarded session: the
// value-level code it shares (bind, describe, execute) reports to it.
type forwardHandler struct{ f *forwarding }

func (h forwardHandler) Parse(context.Context, string, []uint32) ([]Statement, error) {
	return nil, errors.New("wire: a forwarded session prepares through Upstream.Intercept")
}

func (h forwardHandler) TxStatus() byte {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.status
}

func (h forwardHandler) Failed(err error) { h.f.failed = err }
func (h forwardHandler) Close() error {
	if err := h.f.up.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// start sends the client what the upstream said at startup.
func (f *forwarding) start() {
	sess := f.sess
	params := f.up.Parameters()
	for _, k := range slices.Sorted(maps.Keys(params)) {
		sess.out.send(&pgproto3.ParameterStatus{Name: k, Value: params[k]})
	}
	sess.out.send(&pgproto3.BackendKeyData{ProcessID: sess.pid, SecretKey: sess.secret})
	sess.out.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	sess.out.flush()
}

// run forwards until the session ends.
func (f *forwarding) run() error {
	f.trace = f.sess.log.Trace().Enabled()
	f.start()
	f.checkIdle()
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		f.upstreamLoop()
	}()
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		f.watch(stop)
	}()

	err := f.clientLoop()

	f.mu.Lock()
	f.ended = true
	if f.idleTimer != nil {
		f.idleTimer.Stop()
	}
	f.mu.Unlock()
	if err == nil {
		// Terminate went upstream with the rest: the upstream closes.
		f.upConn.SetReadDeadline(time.Now().Add(time.Second))
	} else {
		f.upConn.Close()
	}
	<-upDone
	f.upConn.Close()
	close(stop)
	<-watchDone
	return err
}

// watch ends the session for Shutdown (once idle) and when its context
// ends (Shutdown's deadline, a lost client).
func (f *forwarding) watch(stop <-chan struct{}) {
	shutdown := f.sess.srv.shutdown
	for {
		select {
		case <-stop:
			return
		case <-shutdown:
			shutdown = nil
			f.shutdown.Store(true)
			f.checkIdle()
		case <-f.sess.ctx.Done():
			cause := context.Cause(f.sess.ctx)
			if errors.Is(cause, errConnLost) {
				f.end(nil)
			} else {
				f.end(toPgError(f.sess.ctx, cause))
			}
			return
		}
	}
}

// end ends the session: e (if any) goes to the client, and both
// connections close. It runs once.
func (f *forwarding) end(e *pgconn.PgError) {
	f.endOnce.Do(func() {
		f.mu.Lock()
		f.ended = true
		ch := f.drained
		f.drained = nil
		f.mu.Unlock()
		if ch != nil {
			close(ch)
		}
		if e != nil {
			f.sess.out.send(errorResponse(e))
			f.sess.out.flush()
		}
		f.sess.cancel(errConnLost)
		f.sess.conn.Close()
		f.upConn.Close()
	})
}

// idleLocked reports a session at ReadyForQuery outside a transaction
// block with nothing owed, nothing being written and nothing answered here.
func (f *forwarding) idleLocked() bool {
	return len(f.queue) == 0 && !f.writing && !f.local && f.status != 'T' && !f.ended
}

// checkIdle ends an idle session that Shutdown is waiting for, and arms
// the idle timeout.
func (f *forwarding) checkIdle() {
	d := f.sess.srv.cfg.IdleSessionTimeout
	if d <= 0 && !f.shutdown.Load() {
		return
	}
	f.mu.Lock()
	idle := f.idleLocked()
	shut := idle && f.shutdown.Load()
	arm := idle && !shut && d > 0 && f.status == 'I'
	if arm {
		gen := f.activity.Load()
		if f.idleTimer != nil && f.timerArmed == gen {
			arm = false // already running for this stretch of idleness
		} else {
			f.timerArmed = gen
			if f.idleTimer == nil {
				f.idleTimer = time.AfterFunc(d, f.idleTimeout)
			} else {
				f.idleTimer.Reset(d)
			}
		}
	}
	f.mu.Unlock()
	if shut {
		f.end(fatalf(codeAdminShutdown, "terminating connection due to administrator command"))
	}
}

func (f *forwarding) idleTimeout() {
	f.mu.Lock()
	expired := f.idleLocked() && f.status == 'I' && f.activity.Load() == f.timerArmed
	f.mu.Unlock()
	if expired {
		f.sess.log.Info().Msg("wire: idle session timeout")
		f.end(fatalf(codeIdleSessionTimeout, "terminating connection due to idle-session timeout"))
	}
}

// cancelUpstream forwards a CancelRequest to the upstream.
func (f *forwarding) cancelUpstream() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.up.Cancel(ctx); err != nil {
		f.sess.log.Info().Err(err).Msg("wire: forwarding a cancel request upstream failed")
	}
}

// ---- upstream to client ----

func (f *forwarding) upstreamLoop() {
	defer func() {
		if r := recover(); r != nil {
			f.sess.log.Error().Interface("panic", r).Msg("wire: forwarding from upstream panicked")
			f.end(fatalf(codeInternalError, "internal error: %v", r))
		}
	}()
	buf := make([]byte, 0, 16<<10)
	for {
		n, err := f.upConn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			used, need, perr := f.relay(buf)
			if perr != nil {
				f.sess.log.Warn().Err(perr).Msg("wire: the upstream sent a malformed message")
				f.end(fatalf(codeProtocolViolation, "the upstream server sent a malformed message"))
				return
			}
			rest := copy(buf, buf[used:])
			buf = buf[:rest]
			switch {
			case need > cap(buf):
				buf = append(make([]byte, 0, need), buf...)
			case cap(buf)-len(buf) < 4<<10:
				buf = append(make([]byte, 0, 2*cap(buf)), buf...)
			case cap(buf) > maxIdleBuffer && rest < 16<<10 && need <= 16<<10:
				buf = append(make([]byte, 0, 16<<10), buf...) // give back what a large message took
			}
		}
		if err != nil {
			f.upstreamEnded(err)
			return
		}
	}
}

// relay writes the complete frames at the start of buf to the client,
// leaving out those the client must not see. It returns how many bytes it
// used and, for an incomplete frame, how big that frame is.
func (f *forwarding) relay(buf []byte) (used, need int, err error) {
	segs := f.segs[:0]
	f.mu.Lock()
	keep, off := 0, 0
	for {
		t, size, complete, ferr := nextFrame(buf[off:], 0)
		if ferr != nil {
			f.mu.Unlock()
			return 0, 0, ferr
		}
		if !complete {
			need = size
			break
		}
		var tx byte
		if t == 'Z' && size > frameHeaderLen {
			tx = buf[off+frameHeaderLen]
		}
		if !f.observe(t, tx) {
			if off > keep {
				segs = append(segs, buf[keep:off])
			}
			keep = off + size
		} else {
			f.lastFrame = t
		}
		off += size
	}
	if off > keep {
		segs = append(segs, buf[keep:off])
	}
	f.writing = len(segs) > 0
	f.mu.Unlock()
	f.segs = segs

	if f.trace && off > 0 {
		traceFrames(f.sess.log, "upstream", buf[:off], false)
	}
	var werr error
	switch len(segs) {
	case 0:
	case 1:
		werr = f.sess.out.writeRaw(segs[0])
	default:
		f.joined = f.joined[:0]
		for _, s := range segs {
			f.joined = append(f.joined, s...)
		}
		werr = f.sess.out.writeRaw(f.joined)
	}
	f.mu.Lock()
	f.writing = false
	if len(f.queue) == 0 && f.drained != nil {
		close(f.drained)
		f.drained = nil
	}
	f.mu.Unlock()
	if werr != nil {
		f.end(nil) // the client is gone
		return off, need, nil
	}
	f.checkIdle()
	return off, need, nil
}

// observe accounts for one upstream frame of type t (tx: a ReadyForQuery's
// status) and reports whether the client gets it. f.mu is held.
func (f *forwarding) observe(t, tx byte) bool {
	switch t {
	case 'N', 'S', 'A':
		// NoticeResponse, ParameterStatus, NotificationResponse: not
		// answers to anything.
		return true
	case 'Z':
		f.status, f.completed = tx, false
		if tx == 'I' {
			f.idleReady++
		}
		show := true
		for len(f.queue) > 0 {
			e := f.queue[0]
			f.queue = f.queue[1:]
			if e.kind == expectSync || e.kind == expectQuery {
				show = e.hide != hideAll
				break
			}
		}
		return show
	case 'G':
		f.copyStarts++
	case 'C':
		f.completed = true
	}
	if len(f.queue) == 0 {
		return true // unsolicited, such as a FATAL before the upstream closes
	}
	head := f.queue[0]
	if t == 'E' {
		if head.kind == expectSync || head.kind == expectQuery {
			return head.hide != hideAll // ReadyForQuery follows
		}
		// The upstream now skips to the next Sync.
		for len(f.queue) > 0 && f.queue[0].kind != expectSync {
			f.queue = f.queue[1:]
		}
		if len(f.queue) == 0 {
			f.upSkip = true
		}
		return head.hide != hideAll
	}
	var done bool
	switch head.kind {
	case expectParse:
		done = t == '1'
	case expectBind:
		done = t == '2'
	case expectClose:
		done = t == '3'
	case expectDescribe:
		done = t == 'T' || t == 'n'
	case expectExecute:
		done = t == 'C' || t == 'I' || t == 's'
	}
	if done {
		f.queue = f.queue[1:]
	}
	switch head.hide {
	case hideAll:
		return false
	case hideDone:
		return !done || t == 'T' || t == 'C' || t == 'I' || t == 's'
	}
	return true
}

// upstreamEnded ends the session when the upstream connection does.
func (f *forwarding) upstreamEnded(err error) {
	f.mu.Lock()
	ended, last := f.ended, f.lastFrame
	f.mu.Unlock()
	if ended {
		return
	}
	if last == 'E' {
		// The upstream said why (a FATAL) and the client has it.
		f.sess.log.Info().Err(err).Msg("wire: the upstream server closed the connection")
		f.end(nil)
		return
	}
	f.sess.log.Warn().Err(err).Msg("wire: lost the connection to the upstream server")
	f.end(fatalf(codeConnectionFailure, "lost the connection to the upstream server"))
}

// ---- client to upstream ----

func (f *forwarding) clientLoop() error {
	for {
		if err := f.readClient(); err != nil {
			return f.clientReadError(err)
		}
		f.activity.Add(1)
		off := 0
		for {
			t, size, complete, err := nextFrame(f.in[off:], f.maxBody)
			if err != nil {
				f.flushUpstream()
				return f.sess.protocolViolation(err)
			}
			if !complete {
				if need := off + size; size > 0 && need > cap(f.in) {
					f.in = append(make([]byte, 0, need), f.in...)
				}
				break
			}
			err = f.clientMessage(t, f.in[off:off+size])
			off += size
			if err != nil {
				f.flushUpstream()
				if errors.Is(err, errTerminate) {
					return nil
				}
				return err
			}
		}
		rest := copy(f.in, f.in[off:])
		f.in = f.in[:rest]
		if cap(f.in) > maxIdleBuffer && rest < 16<<10 {
			// A large message grew the buffer: give it back.
			f.in = append(make([]byte, 0, 16<<10), f.in...)
		}
		if err := f.flushUpstream(); err != nil {
			return err
		}
	}
}

func (f *forwarding) readClient() error {
	if len(f.ahead) > 0 {
		f.in = append(f.in, f.ahead...)
		f.ahead = f.ahead[:0]
		return nil
	}
	if f.aheadErr != nil {
		return f.aheadErr
	}
	if len(f.in) == cap(f.in) {
		f.in = append(make([]byte, 0, 2*cap(f.in)), f.in...)
	}
	n, err := f.sess.conn.Read(f.in[len(f.in):cap(f.in)])
	f.in = f.in[:len(f.in)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (f *forwarding) clientReadError(err error) error {
	f.mu.Lock()
	ended := f.ended
	f.mu.Unlock()
	if ended {
		return &sessionEnd{errConnLost}
	}
	if errors.Is(err, io.EOF) && len(f.in) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return f.sess.readError(err)
}

// clientMessage handles one client frame.
func (f *forwarding) clientMessage(t byte, frame []byte) error {
	sess := f.sess
	body := frame[frameHeaderLen:]
	if sess.skipToSync {
		// A message answered here failed: like Postgres, ignore the rest
		// of the batch.
		if t != 'S' && t != 'X' {
			return nil
		}
		sess.skipToSync = false
	}
	hasLocal := len(sess.statements) > 0 || len(sess.portals) > 0
	switch t {
	case 'Q':
		q, _, ok := cstring(body)
		if !ok {
			return sess.protocolViolation(errors.New("invalid Query message"))
		}
		parts, err := f.up.Intercept(sess.ctx, q, nil)
		if err == nil && len(parts) == 0 {
			f.forward(frame, expectQuery)
			f.batchOpen = false
			return nil
		}
		return f.localQuery(parts, err)
	case 'P':
		return f.parse(frame)
	case 'B':
		if hasLocal {
			return f.bind(frame)
		}
		f.forward(frame, expectBind)
	case 'D':
		if hasLocal {
			return f.describe(frame)
		}
		f.forward(frame, expectDescribe)
	case 'E':
		if hasLocal {
			return f.execute(frame)
		}
		f.forward(frame, expectExecute)
	case 'C':
		if hasLocal {
			return f.closeObject(frame)
		}
		f.forward(frame, expectClose)
	case 'S':
		sess.closePortal("")
		f.forward(frame, expectSync)
		f.batchOpen = false
		return nil
	case 'F':
		f.forward(frame, expectQuery)
		f.batchOpen = false
		return nil
	case 'X':
		f.forward(frame, 0)
		return errTerminate
	case 'c', 'f':
		f.copyEnds++
		f.forward(frame, 0)
		return nil
	default:
		// Flush, the COPY sub-protocol, and anything the upstream is to
		// judge.
		f.forward(frame, 0)
		return nil
	}
	f.batchOpen = true
	return nil
}

// forward queues a client frame for the upstream.
func (f *forwarding) forward(frame []byte, kind expectKind) {
	f.out = append(f.out, frame...)
	if kind != 0 {
		f.pending = append(f.pending, expect{kind: kind})
	}
}

// inject queues a message of wire's own for the upstream.
func (f *forwarding) inject(msg interface{ Encode([]byte) ([]byte, error) }, kind expectKind, hide hideMode) {
	f.out = appendFrame(f.out, msg)
	if kind != 0 {
		f.pending = append(f.pending, expect{kind: kind, hide: hide})
	}
}

// flushUpstream writes the queued frames, their expectations first.
func (f *forwarding) flushUpstream() error {
	if len(f.out) == 0 {
		return nil
	}
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return &sessionEnd{errConnLost}
	}
	for _, e := range f.pending {
		if f.upSkip && e.kind != expectSync {
			continue // the upstream will not answer it
		}
		if e.kind == expectSync {
			f.upSkip = false
		}
		f.queue = append(f.queue, e)
	}
	f.mu.Unlock()
	f.pending = f.pending[:0]
	if f.trace {
		traceFrames(f.sess.log, "client", f.out, true)
	}
	_, err := f.upConn.Write(f.out)
	if cap(f.out) > 1<<20 {
		f.out = nil
	} else {
		f.out = f.out[:0]
	}
	if err != nil {
		f.upstreamEnded(err)
		return &sessionEnd{errConnLost}
	}
	return nil
}

// drain makes the upstream answer everything forwarded so far and waits
// until those answers have reached the client; the client goroutine then
// answers a message itself, until localDone.
func (f *forwarding) drain() error {
	f.inject(&pgproto3.Flush{}, 0, showAll)
	if err := f.flushUpstream(); err != nil {
		return err
	}
	f.mu.Lock()
	// An upstream in COPY FROM STDIN that the client has not ended waits
	// for data the client has not sent: a client that pipelines a message
	// answered here there is stuck, and so would be this wait.
	copyWait := func() bool { return f.copyStarts > f.copyEnds }
	for (len(f.queue) > 0 || f.writing) && !f.ended && !copyWait() {
		ch := make(chan struct{})
		f.drained = ch
		f.mu.Unlock()
		select {
		case <-ch:
		case <-f.sess.ctx.Done():
		}
		f.mu.Lock()
		if f.sess.ctx.Err() != nil {
			break
		}
	}
	ended, copyIn := f.ended || f.sess.ctx.Err() != nil, copyWait()
	f.local = !ended
	f.mu.Unlock()
	if ended {
		return &sessionEnd{errConnLost}
	}
	if copyIn {
		return f.sess.fatal(fatalf(codeProtocolViolation, "unexpected message type during COPY FROM STDIN"))
	}
	return nil
}

func (f *forwarding) localDone() {
	f.mu.Lock()
	f.local = false
	f.mu.Unlock()
	f.checkIdle()
}

// upstreamFailed reports that the upstream is skipping to the next Sync
// because a message before this one failed; after drain.
func (f *forwarding) upstreamFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upSkip
}

// aborted reports a failed transaction block; after drain.
func (f *forwarding) aborted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status == 'E' && !f.completed
}

// closeStalePortals closes the portals answered here once the transaction
// they were made in has ended (a ReadyForQuery reported 'I' since).
func (f *forwarding) closeStalePortals() {
	f.mu.Lock()
	n := f.idleReady
	f.mu.Unlock()
	if n == f.seenIdle {
		return
	}
	f.seenIdle = n
	for _, name := range slices.Collect(maps.Keys(f.sess.portals)) {
		f.sess.closePortal(name)
	}
}

// abortUpstream makes the upstream fail the current transaction, as the
// client believes it failed after f.failed. Inside a transaction block
// the block is aborted; in an implicit transaction (a batch before Sync,
// a split Query) what the upstream did in it is rolled back. Outside any
// transaction there is nothing to fail.
func (f *forwarding) abortUpstream() {
	if f.failed == nil {
		return
	}
	reason := toPgError(context.Background(), f.failed)
	f.failed = nil
	f.mu.Lock()
	open := f.status != 'I'
	f.mu.Unlock()
	if !open && !f.batchOpen {
		return
	}
	// The text is what the upstream's log shows with its syntax error.
	msg := strings.NewReplacer("\r", " ", "\n", " ").Replace(reason.Code + " " + reason.Message)
	f.inject(&pgproto3.Parse{Name: abortStatement, Query: "-- " + msg + "\nA STATEMENT ANSWERED BY THE PROXY FAILED"}, expectParse, hideAll)
	f.batchOpen = true
}

// answer runs op as a message answered here: after draining, unless the
// upstream skips the batch already, and with the upstream failed too if
// op fails. checkAborted refuses op in a failed transaction block, as
// Postgres refuses anything that is not a transaction exit.
func (f *forwarding) answer(checkAborted bool, op func() error) error {
	if err := f.drain(); err != nil {
		return err
	}
	defer f.localDone()
	if f.upstreamFailed() {
		f.sess.skipToSync = true
		return nil
	}
	f.closeStalePortals()
	f.failed = nil
	var err error
	if checkAborted && f.aborted() {
		err = f.sess.extendedFail(context.Background(), errAborted)
	} else {
		err = op()
	}
	f.abortUpstream()
	f.sess.out.flush()
	if err != nil {
		return err
	}
	return f.flushUpstream()
}

// localQuery answers a Query with parts (or the error Intercept gave),
// forwarding the parts that are the upstream's as extended-protocol
// statements, so that the whole Query stays one implicit transaction
// upstream, as in Postgres, and ends with the upstream's ReadyForQuery.
func (f *forwarding) localQuery(parts []Part, ierr error) error {
	sess := f.sess
	// Postgres drops the unnamed statement and portal at every Query.
	sess.closePortal("")
	delete(sess.statements, "")
	if err := f.drain(); err != nil {
		return err
	}
	defer f.localDone()
	f.closeStalePortals()
	f.failed = nil
	fail := func(ctx context.Context, err error) error {
		if e := sess.fail(ctx, err); e != nil {
			return e
		}
		f.abortUpstream()
		return nil
	}
	if ierr != nil {
		if err := fail(context.Background(), ierr); err != nil {
			return err
		}
		parts = nil
	}
	for _, p := range parts {
		if p.Statement == nil {
			f.inject(&pgproto3.Parse{Query: p.Query}, expectParse, hideDone)
			f.inject(&pgproto3.Bind{}, expectBind, hideDone)
			f.inject(&pgproto3.Describe{ObjectType: 'P'}, expectDescribe, hideDone)
			f.inject(&pgproto3.Execute{}, expectExecute, hideDone)
			f.batchOpen = true
			continue
		}
		if err := f.drain(); err != nil {
			return err
		}
		if f.upstreamFailed() {
			break // a statement before it failed
		}
		if f.aborted() {
			if err := fail(context.Background(), errAborted); err != nil {
				return err
			}
			break
		}
		ctx, end := sess.beginStatement(sess.ctx)
		stop := f.watchClient()
		err := sess.runSimple(ctx, p.Statement)
		stop()
		end()
		if err != nil {
			if err := fail(ctx, err); err != nil {
				return err
			}
			break
		}
	}
	f.inject(&pgproto3.Sync{}, expectSync, showAll)
	f.batchOpen = false
	sess.out.flush()
	return f.flushUpstream()
}

// parse handles a Parse message.
func (f *forwarding) parse(frame []byte) error {
	sess := f.sess
	msg, err := decodeFrontend('P', frame[frameHeaderLen:])
	if err != nil {
		return sess.protocolViolation(err)
	}
	m := msg.(*pgproto3.Parse)
	parts, ierr := f.up.Intercept(sess.ctx, m.Query, m.ParameterOIDs)
	if ierr == nil && len(parts) == 0 {
		f.forward(frame, expectParse)
		f.batchOpen = true
		if _, ok := sess.statements[m.Name]; !ok {
			return nil
		}
		if m.Name == "" {
			delete(sess.statements, "") // replaced, upstream as here
			return nil
		}
		// The upstream answers for the name: 42P05 while the empty
		// statement mirroring ours exists, success if it was
		// deallocated since, and then the name is no longer ours.
		return f.answer(false, func() error {
			if !f.upstreamFailed() {
				delete(sess.statements, m.Name)
			}
			return nil
		})
	}
	return f.answer(true, func() error {
		if ierr != nil {
			return sess.extendedFail(context.Background(), ierr)
		}
		if len(parts) != 1 || parts[0].Statement == nil {
			return sess.extendedFail(context.Background(), errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement"))
		}
		stmt := parts[0].Statement
		f.inject(&pgproto3.Parse{Name: m.Name}, expectParse, showAll)
		f.batchOpen = true
		if err := f.drain(); err != nil {
			return err
		}
		if f.upstreamFailed() {
			sess.skipToSync = true // the upstream's error reached the client
			return nil
		}
		sess.statements[m.Name] = &preparedStatement{name: m.Name, stmt: stmt, paramOIDs: stmt.ParamOIDs(), cols: columnDefaults(stmt.Columns())}
		return nil
	})
}

func (f *forwarding) bind(frame []byte) error {
	sess := f.sess
	body := frame[frameHeaderLen:]
	portalName, rest, ok := cbytes(body)
	stmt, _, ok2 := cbytes(rest)
	if ok && ok2 {
		if _, local := sess.statements[string(stmt)]; local {
			msg, err := decodeFrontend('B', body)
			if err != nil {
				return sess.protocolViolation(err)
			}
			return f.answer(true, func() error { return sess.bind(msg.(*pgproto3.Bind)) })
		}
		if _, local := sess.portals[string(portalName)]; local {
			portal := string(portalName)
			if portal != "" {
				return f.answer(false, func() error {
					return sess.extendedFail(context.Background(), errorf(codeDuplicateCursor, "portal \"%s\" already exists", portal))
				})
			}
			sess.closePortal("") // replaced by the upstream's
		}
	}
	f.forward(frame, expectBind)
	f.batchOpen = true
	return nil
}

func (f *forwarding) describe(frame []byte) error {
	sess := f.sess
	body := frame[frameHeaderLen:]
	if len(body) > 0 {
		name, _, ok := cbytes(body[1:])
		_, stmt := sess.statements[string(name)]
		_, portal := sess.portals[string(name)]
		if ok && (body[0] == 'S' && stmt || body[0] == 'P' && portal) {
			m := &pgproto3.Describe{ObjectType: body[0], Name: string(name)}
			return f.answer(true, func() error { return sess.describe(m) })
		}
	}
	f.forward(frame, expectDescribe)
	f.batchOpen = true
	return nil
}

func (f *forwarding) execute(frame []byte) error {
	sess := f.sess
	body := frame[frameHeaderLen:]
	if name, _, ok := cbytes(body); ok {
		if _, local := sess.portals[string(name)]; local {
			msg, err := decodeFrontend('E', body)
			if err != nil {
				return sess.protocolViolation(err)
			}
			return f.answer(true, func() error {
				stop := f.watchClient()
				defer stop()
				return sess.execute(msg.(*pgproto3.Execute))
			})
		}
	}
	f.forward(frame, expectExecute)
	f.batchOpen = true
	return nil
}

func (f *forwarding) closeObject(frame []byte) error {
	sess := f.sess
	body := frame[frameHeaderLen:]
	if len(body) > 0 {
		nb, _, ok := cbytes(body[1:])
		switch {
		case !ok:
		case body[0] == 'S':
			if ps, local := sess.statements[string(nb)]; local {
				// The upstream closes the empty statement mirroring it
				// and answers.
				delete(sess.statements, string(nb))
				for pname, p := range sess.portals {
					if p.stmt == ps {
						sess.closePortal(pname)
					}
				}
			}
		case body[0] == 'P':
			if _, local := sess.portals[string(nb)]; local {
				m := &pgproto3.Close{ObjectType: 'P', Name: string(nb)}
				return f.answer(false, func() error { return sess.closeObject(m) })
			}
		}
	}
	f.forward(frame, expectClose)
	f.batchOpen = true
	return nil
}

// watchClient reads ahead from the client while a statement answered here
// runs, so that a client hanging up cancels it, as in a value-level
// session. stop ends the read-ahead and keeps what it read for the client
// loop.
func (f *forwarding) watchClient() (stop func()) {
	conn := f.sess.conn
	done := make(chan struct{})
	var buf []byte
	var rerr error
	go func() {
		defer close(done)
		b := make([]byte, 4<<10)
		for len(buf) < maxReadAhead {
			n, err := conn.Read(b)
			buf = append(buf, b[:n]...)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					rerr = err
					f.sess.cancel(errConnLost)
				}
				return
			}
		}
	}()
	return func() {
		conn.SetReadDeadline(time.Now())
		<-done
		conn.SetReadDeadline(time.Time{})
		f.ahead = append(f.ahead, buf...)
		if rerr != nil {
			f.aheadErr = rerr
		}
	}
}
