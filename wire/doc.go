// Package wire is pgcdc's Postgres wire-protocol front end. psql, pgx, JDBC,
// psycopg2 and BI tools connect to it as if it were Postgres; it turns their
// messages into calls on a Handler and streams the results back.
//
// It owns the listener, the startup (TLS, protocol version, CancelRequest),
// authentication (SCRAM-SHA-256 or trust), the simple and extended query
// protocols with pipelining, NOTICE delivery, cancellation, limits and
// graceful shutdown. It knows nothing about SQL, replication or DuckDB: the
// Handler parses and runs statements, and wire never looks inside them. That
// boundary keeps this package testable with a fake handler and real clients,
// and lets the SQL side change without touching protocol code.
//
// A session is served in one of two ways. A value-level session (NewServer)
// hands each statement to a Handler and encodes the Go values it returns. A
// forwarded session (NewForwardingServer) relays the client's messages, as
// bytes, to a session of its own on an upstream Postgres server, and
// answers only the statements its Forwarder intercepts, with the
// value-level machinery; see "Forwarded sessions" below.
//
// # Architecture
//
// The package is built on github.com/jackc/pgx/v5/pgproto3, which encodes
// and decodes individual messages; everything about order and state lives
// here.
//
//	Server            listener, connection limits, process-ID table for
//	                  CancelRequest, Shutdown (server.go)
//	startup           encryption negotiation, StartupMessage, SCRAM,
//	                  the auth failure delay (startup.go, scram.go)
//	session           one per authenticated connection: the message loop,
//	                  transaction status, prepared statements and portals
//	                  (session.go, query.go, extended.go)
//	DecodeParam,      Bind parameters to Go values, Go values to DataRow
//	appendValue       columns, through one pgtype.Map per session (values.go)
//	COPY              the COPY sub-protocol and its text, csv and binary
//	                  formats (copy.go)
//	forwarding        a forwarded session: the two relays, the queue of
//	                  answers the upstream owes, intercepted statements
//	                  (forward.go, frame.go); ConnectUpstream opens the
//	                  upstream session with pgconn (upstream.go)
//
// Each connection has two goroutines. The serve goroutine owns all protocol
// state and calls the handler. A reader goroutine reads client messages one
// ahead; it exists so that a client hanging up while a statement runs is
// noticed at once and cancels that statement's context instead of leaving
// the handler working for nobody. Everything else that reaches into a session
// from outside does so through contexts: a CancelRequest (arriving on its own
// connection) cancels the context of the statement running now, Shutdown
// cancels the session's context. The wire layer then reports what the
// context's cause says (57014 for a cancel, 57P01 for shutdown) whatever
// error the handler made of it. NOTICEs (and ParameterStatus, for a SET the
// handler answered) are written under a mutex, so a handler may send them
// from any goroutine while its statement runs.
//
// The handler owns the transaction status that ReadyForQuery reports. Every
// error a statement ends with, including the ones the wire layer raises
// itself (a Bind parameter that does not decode, a cancel, a value that
// cannot be encoded), is passed to SessionHandler.Failed, so that a failed
// statement inside a transaction block aborts the block ('E') as in
// Postgres. Clients depend on it: pgJDBC skips COMMIT when it sees 'I', and
// psycopg2 expects 'E' after an error inside BEGIN.
//
// # Connection state machine
//
//	accept ── MaxUnauthenticatedConnections reached: FATAL 53300, close
//	  │       (counted as unauthenticated from here, and the
//	  │       AuthenticationTimeout runs from here to admit)
//	  ▼
//	startup ◀──────────────────────────────────────────────┐
//	  │── SSLRequest ──▶ 'S' + TLS handshake, or 'N' ────────┤
//	  │── GSSENCRequest ──▶ 'N' ─────────────────────────────┘
//	  │── TLS ClientHello first (sslnegotiation=direct, ALPN "postgresql")
//	  │── CancelRequest ──▶ cancel the matching session's statement, close
//	  │── protocol 3.x StartupMessage (3.1+ or _pq_.* options get
//	  │   NegotiateProtocolVersion and continue as 3.0; other majors: FATAL)
//	  ▼
//	TLSRequired and not encrypted: FATAL 28000, before any auth message
//	  │
//	  ▼
//	auth: trust, or SCRAM-SHA-256 (a wrong proof waits AuthFailureDelay,
//	  │   then FATAL 28P01)
//	  ▼
//	admit: shutting down (57P03), MaxConnections reached (53300); else
//	  │    the connection moves from the unauthenticated count to a
//	  │    session slot, the timeout is lifted, and AuthenticationOk
//	  │    (after SASLFinal) goes out
//	  ▼
//	Handler.NewSession ──▶ ParameterStatus…, BackendKeyData, ReadyForQuery
//	  │
//	  ▼
//	ready ◀──────────────────────────────────────────────────────────┐
//	  │── Query: Parse all; per statement Execute, RowDescription,     │
//	  │          DataRow…, CommandComplete; first error stops ─────────┤
//	  │── Parse/Bind/Describe/Execute/Close: answered in order,        │
//	  │   flushed at Flush or Sync; an error discards until Sync       │
//	  │── a Result that is a CopyOutResult or CopyInResult: the        │
//	  │   COPY sub-protocol instead of rows ("COPY" below) ────────────┤
//	  │── Sync: ReadyForQuery with Handler's TxStatus ─────────────────┘
//	  │── Terminate, EOF, malformed message (FATAL 08P01),
//	  │   idle timeout (FATAL 57P05), Shutdown (FATAL 57P01)
//	  ▼
//	release: close portals, SessionHandler.Close, forget the process ID
//
// Portals execute lazily: Bind only decodes parameters, the first Execute
// calls Statement.Execute, and a row limit suspends the portal with the
// Result kept open (and its context alive) for the next Execute. The
// unnamed portal dies at Sync or at the next Bind; named ones when no
// transaction block is open any more. Idle timeout and graceful shutdown
// only end a session that sits at ReadyForQuery outside a transaction
// block; Shutdown's deadline ends the rest.
//
// # COPY
//
// A statement joins the COPY sub-protocol through its Result (copy.go). A
// CopyOutResult (COPY ... TO STDOUT) is answered with CopyOutResponse, one
// CopyData per row, CopyDone and CommandComplete; a CopyInResult (COPY ...
// FROM STDIN) with CopyInResponse, after which the session reads the
// client's CopyData until CopyDone or CopyFail, hands each row to Put, and
// ends with End. The handler says which columns are copied, with their
// types, and the format options (CopyOptions, with Postgres's defaults
// filled in); wire owns the formats themselves, text, csv and binary, and
// encodes and decodes values with the same pgtype.Map as DataRows and Bind
// parameters, so COPY data matches what the session's queries return.
// Rows are encoded and decoded one at a time: the decoder keeps only the
// record it has not seen the end of, and output is flushed every
// flushThreshold bytes, so a COPY of any size runs in bounded memory.
//
// As in Postgres, Flush and Sync during COPY FROM STDIN are ignored, any
// other message fails the COPY (08P01), CopyFail fails it with 57014, and
// after a failure the client's remaining CopyData, CopyDone and CopyFail
// are ignored by the message loop. A COPY runs to its end whatever the row
// limit of the Execute that started it. A COPY that fails calls End with
// the error, so the handler can undo what was put.
//
// # Forwarded sessions
//
// After authentication, Forwarder.Forward opens the client's upstream
// session (ConnectUpstream: the upstream's credentials, the client's startup
// parameters). The client then gets the upstream's ParameterStatus values,
// a BackendKeyData with the upstream backend's PID (when no other session
// has it) and a secret of wire's own, and ReadyForQuery. From here on:
//
//	client ──frames──▶ client goroutine ──frames──▶ upstream
//	client ◀──frames── upstream goroutine ◀──frames── upstream
//
// Each relay reads a chunk, finds the frame boundaries (type and length
// only) and writes the chunk on in one write; rows, COPY data, NOTICEs,
// ParameterStatus, errors and ReadyForQuery are never decoded. Only Query
// and Parse are looked into: Upstream.Intercept gets their query text.
//
// To answer a statement itself in order with the upstream's answers, the
// session keeps a queue of what the upstream owes (ParseComplete for a
// Parse, ReadyForQuery for a Sync or Query, ...), popped by the upstream
// goroutine as the answers go by. An ErrorResponse in the extended
// protocol pops everything up to the next Sync, which the upstream now
// skips. Before answering a message, the client goroutine drains: it sends
// a Flush, waits until the queue is empty, and then answers through the
// value-level code, which writes under the same mutex as the relay.
// Messages that name an intercepted statement or portal (Bind, Describe,
// Execute, Close) are answered here too; a Sync always goes upstream, so
// ReadyForQuery and its transaction status are the upstream's.
//
//	Query, intercepted        a Query the forwarder split: its upstream parts
//	                          go as Parse/Bind/Describe/Execute (their
//	                          ParseComplete, BindComplete and NoData hidden),
//	                          its own parts run in between, then one Sync:
//	                          the whole string stays one implicit
//	                          transaction upstream, as in Postgres
//	Parse, intercepted        mirrored upstream by an empty statement of the
//	                          same name, so names (duplicates, the unnamed
//	                          statement, DEALLOCATE) stay the upstream's
//	failure of an intercepted statement
//	                          the client is told the error; if a transaction
//	                          may be open upstream, a Parse the upstream cannot
//	                          parse (its error hidden) fails it there too, so a
//	                          block is aborted ('E') and an implicit
//	                          transaction rolled back, as the client believes
//	failed block ('E')        intercepted messages get 25P02, as in Postgres
//
// A CancelRequest for the session cancels the intercepted statement running
// now, if any, and is otherwise sent to the upstream with its own key
// (Upstream.Cancel). Shutdown, the idle timeout and the client hanging up
// work as in a value-level session: an idle session is one at
// ReadyForQuery outside a transaction block with nothing owed. While an
// intercepted statement runs, a read-ahead goroutine watches the client
// for a hang-up. When the upstream ends the session, the client gets the
// upstream's FATAL, or 08006 if the upstream said nothing.
//
// testdata/forward holds protocol scripts that TestForwardScripts runs
// against a throwaway Postgres, once directly and once through a
// forwarding server whose forwarder intercepts local_* functions that the
// upstream also has: the two transcripts must be equal, so Postgres itself
// says what the proxy must answer.
//
// # Connection limits
//
// A connection counts against one of two limits at a time. From accept
// until it has authenticated it counts against
// MaxUnauthenticatedConnections; only then does it take one of the
// MaxConnections session slots. So sockets that never authenticate (or
// never send a startup packet) cannot lock out clients that know the
// password, which is what happens to Postgres when authenticating backends
// fill max_connections. A connection over the unauthenticated limit gets
// FATAL 53300 written straight away, as Postgres does when it cannot fork,
// without a goroutine or a read: whatever it sent first (a StartupMessage,
// SSLRequest or a TLS ClientHello) is never looked at. AuthenticationTimeout
// bounds how long an unauthenticated connection can keep its slot. A wrong
// password keeps the slot for AuthFailureDelay more before its 28P01, even
// if the client hangs up, so password guesses come at most
// MaxUnauthenticatedConnections per AuthFailureDelay.
//
// Every failure that is not the client's connection stays on its
// connection: a panic in a handler is recovered and logged and closes that
// connection only, and a message pgproto3 cannot decode gets FATAL 08P01.
//
// # Debugging
//
// At debug level each session logs its life (start, failed statements with
// their SQLSTATE, why it ended), tagged with the remote address, user,
// database and pid: the process ID the client got in BackendKeyData
// (PgConn.PID in pgx), which is also what a CancelRequest names. At trace
// level every message is logged in both directions as pgproto3's JSON,
// except the authentication exchange; trace output contains parameter values
// and result rows, so keep it off in production.
//
// To see what a client sends, pgx can trace from its side
// (PgConn.Frontend().Trace). The tests here drive the server with real psql
// and pgx and with scripts of raw messages (protocol_test.go: send these,
// expect those), which is the quickest way to pin a protocol bug down: write
// the script, then check what a real Postgres answers to the same messages.
// FuzzMessageLoop (fuzz_test.go, seeds in testdata/fuzz) throws arbitrary
// bytes at the startup, authentication and message loop and checks that
// the server neither panics nor hangs and keeps serving:
//
//	go test ./wire -run '^$' -fuzz FuzzMessageLoop -fuzztime 60s -fuzzminimizetime 2s
//
// FuzzCopyDecoder throws arbitrary COPY data at the text, csv and binary
// decoders, whole and split across messages:
//
//	go test ./wire -run '^$' -fuzz FuzzCopyDecoder -fuzztime 60s
//
// FuzzForward does the same to forwarded sessions, with a value-level wire
// server as the upstream and a forwarder that intercepts some statements:
//
//	go test ./wire -run '^$' -fuzz FuzzForward -fuzztime 60s -fuzzminimizetime 2s
//
// The real clients (psql, pgx, psycopg2, pgJDBC, node-postgres) run against
// the whole pgcdc in cmd/pgcdc/clients_*_test.go.
package wire
