package wire

import (
	"context"
	"crypto/tls"
	"time"
)

// Column describes one result column as it goes out in RowDescription.
// A zero OID is sent as text; a zero TypeSize (with TypeMod) is filled in
// from the type.
type Column struct {
	Name     string
	OID      uint32 // Postgres type OID, e.g. pgtype.Int8OID
	TypeSize int16  // -1 for variable length
	TypeMod  int32  // -1 when none
}

// SessionInfo is what the client told us at startup.
type SessionInfo struct {
	User        string
	Database    string
	Application string
	RemoteAddr  string
	Parameters  map[string]string // every startup parameter the client sent
	// ServerVersion is the server_version reported to the client.
	ServerVersion string
}

// Handler opens a SessionHandler for every authenticated connection.
type Handler interface {
	NewSession(ctx context.Context, info SessionInfo) (SessionHandler, error)
}

// SessionHandler executes the statements of one client session. It is used by
// one goroutine at a time.
type SessionHandler interface {
	// Parse splits query into statements and prepares each. paramOIDs are the
	// types the client declared in a Parse message (zero means unspecified);
	// the returned statements report the resolved ones.
	Parse(ctx context.Context, query string, paramOIDs []uint32) ([]Statement, error)
	// TxStatus is the transaction status for ReadyForQuery: 'I', 'T' or 'E'.
	TxStatus() byte
	// Failed is told of every error a statement ends with, whoever raised
	// it: the handler, or the wire layer itself (a Bind parameter that does
	// not decode, a cancelled statement, a value that cannot be encoded).
	// In Postgres any error inside a transaction block aborts the block, so
	// a handler that tracks transactions moves to 'E' here.
	Failed(err error)
	// Close releases the session's resources when the connection ends.
	Close() error
}

// Statement is one prepared statement.
type Statement interface {
	// ParamOIDs are the parameter types, one per $n.
	ParamOIDs() []uint32
	// Columns describes the result rows; nil means the statement returns no
	// rows (NoData).
	Columns() []Column
	// Execute runs the statement with decoded parameter values (see
	// DecodeParam for the Go types). Notices sent through n reach the client
	// while the statement runs. ctx is cancelled by a CancelRequest.
	Execute(ctx context.Context, params []any, n Notifier) (Result, error)
}

// Result is a cursor over the rows of an executed statement. The wire layer
// pulls rows as the client asks for them, so an Execute with a row limit can
// suspend the portal and resume it later.
type Result interface {
	// Next returns the next row, or io.EOF after the last one. The values are
	// Go values that pgtype can encode for the column's OID (string, int64,
	// float64, bool, time.Time, []byte, pgtype.Numeric, ...); nil is NULL.
	Next(ctx context.Context) ([]any, error)
	// Tag is the command tag (e.g. "SELECT 3", "INSERT 0 1"), valid after
	// Next returned io.EOF.
	Tag() string
	Close() error
}

// Notifier delivers asynchronous messages to the client while a statement
// runs.
type Notifier interface {
	// Notice sends a NoticeResponse (severity NOTICE, WARNING, INFO, ...).
	Notice(severity, message string)
	// ParameterStatus tells the client a reported setting changed, as
	// Postgres does after SET application_name, SET TimeZone and the like.
	ParameterStatus(name, value string)
}

// Config configures a Server.
type Config struct {
	// Password enables SCRAM-SHA-256 authentication for every user. Empty
	// means trust, which Serve allows only on loopback and unix-socket
	// listeners.
	Password string
	// TLS, when set, lets clients upgrade with SSLRequest or connect with
	// direct TLS (sslnegotiation=direct).
	TLS *tls.Config
	// TLSRequired refuses clients that did not negotiate TLS with FATAL
	// 28000, before any authentication exchange. It needs TLS.
	TLSRequired bool
	// MaxMessageSize bounds one client message (default 64 MiB).
	MaxMessageSize int
	// MaxConnections bounds concurrent authenticated sessions (default
	// 100). Connections still authenticating do not count against it, so
	// they cannot lock clients that know the password out.
	MaxConnections int
	// MaxUnauthenticatedConnections bounds the connections that are
	// accepted but not yet authenticated (default 32), counted from
	// accept. Past it a new connection gets FATAL 53300 at once and is
	// closed.
	MaxUnauthenticatedConnections int
	// AuthenticationTimeout bounds everything before the session starts:
	// TLS handshake, startup packet and authentication exchange (default
	// 10s), like Postgres' authentication_timeout.
	AuthenticationTimeout time.Duration
	// AuthFailureDelay is how long a connection that gave a wrong password
	// waits before it gets its 28P01 (0: none), like Postgres' auth_delay.
	// The connection keeps its unauthenticated slot meanwhile, so password
	// guesses are bounded by MaxUnauthenticatedConnections per
	// AuthFailureDelay.
	AuthFailureDelay time.Duration
	// IdleSessionTimeout closes a session idle outside a transaction this long
	// (0 disables it).
	IdleSessionTimeout time.Duration
	// ServerVersion is reported in ParameterStatus (e.g. "16.0").
	ServerVersion string
}
