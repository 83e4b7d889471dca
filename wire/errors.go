package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ErrTrustNotLoopback is returned by Serve when Config.Password is empty and
// the listener is reachable from other hosts: trust authentication would let
// anyone on the network in.
var ErrTrustNotLoopback = errors.New("wire: trust authentication (empty password) is only allowed on loopback or unix socket listeners")

// ErrTLSNotConfigured is returned by Serve when Config.TLSRequired is set
// without Config.TLS: no client could ever connect.
var ErrTLSNotConfigured = errors.New("wire: TLS is required but not configured")

// ErrServerClosed is returned by Serve when it is called after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// SQLSTATE codes the wire layer raises itself. Handlers bring their own.
const (
	codeProtocolViolation     = "08P01"
	codeInvalidAuthorization  = "28000"
	codeInvalidPassword       = "28P01"
	codeTooManyConnections    = "53300"
	codeQueryCanceled         = "57014"
	codeAdminShutdown         = "57P01"
	codeCannotConnectNow      = "57P03"
	codeIdleSessionTimeout    = "57P05"
	codeSyntaxError           = "42601"
	codeUndefinedFunction     = "42883"
	codeDuplicatePreparedStmt = "42P05"
	codeDuplicateCursor       = "42P03"
	codeInvalidSQLStatement   = "26000"
	codeInvalidCursorName     = "34000"
	codeInvalidTextRepr       = "22P02"
	codeInvalidBinaryRepr     = "22P03"
	codeFeatureNotSupported   = "0A000"
	codeInternalError         = "XX000"
	codeInvalidParameterValue = "22023"
	codeInFailedTransaction   = "25P02"
	codeConnectionFailure     = "08006"
	codeBadCopyFileFormat     = "22P04"
)

const (
	severityError = "ERROR"
	severityFatal = "FATAL"
)

// Causes given to context cancellation. The wire layer decides what to tell
// the client from why a statement's context ended, not from whatever error
// the handler returned for it: an engine's own "interrupted" error and a plain
// context.Canceled must both become 57014 when a CancelRequest caused them.
var (
	errQueryCanceled = errors.New("wire: statement canceled by CancelRequest")
	errShutdown      = errors.New("wire: server shutting down")
	errConnLost      = errors.New("wire: client connection lost")
)

// sessionEnd ends the connection after the FATAL error (if any) was sent.
type sessionEnd struct{ err error }

func (e *sessionEnd) Error() string { return "session ended: " + e.err.Error() }
func (e *sessionEnd) Unwrap() error { return e.err }

func pgError(severity, code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: severity, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errorf(code, format string, args ...any) *pgconn.PgError {
	return pgError(severityError, code, format, args...)
}

func fatalf(code, format string, args ...any) *pgconn.PgError {
	return pgError(severityFatal, code, format, args...)
}

// toPgError decides what the client is told about err. ctx is the context
// the failing work ran under (context.Background() when none): its
// cancellation cause wins over err, see errQueryCanceled.
func toPgError(ctx context.Context, err error) *pgconn.PgError {
	if ctx != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errQueryCanceled):
			return errorf(codeQueryCanceled, "canceling statement due to user request")
		case errors.Is(cause, errShutdown):
			return fatalf(codeAdminShutdown, "terminating connection due to administrator command")
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		out := *pgErr
		if out.Severity == "" {
			out.Severity = severityError
		}
		if out.Code == "" {
			out.Code = codeInternalError
		}
		return &out
	}
	return errorf(codeInternalError, "%s", err.Error())
}

func isFatal(e *pgconn.PgError) bool {
	return e.Severity == severityFatal || e.Severity == "PANIC"
}

func errorResponse(e *pgconn.PgError) *pgproto3.ErrorResponse {
	unlocalized := e.SeverityUnlocalized
	if unlocalized == "" {
		unlocalized = e.Severity
	}
	return &pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: unlocalized,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
		Position:            e.Position,
		InternalPosition:    e.InternalPosition,
		InternalQuery:       e.InternalQuery,
		Where:               e.Where,
		SchemaName:          e.SchemaName,
		TableName:           e.TableName,
		ColumnName:          e.ColumnName,
		DataTypeName:        e.DataTypeName,
		ConstraintName:      e.ConstraintName,
		File:                e.File,
		Line:                e.Line,
		Routine:             e.Routine,
	}
}
