package replicator

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs the engine reports. They are Postgres's own codes, so clients
// can handle pgcdc's errors the way they handle the server's.
const (
	CodeInvalidParameter  = "22023" // invalid_parameter_value
	CodeUndefinedTable    = "42P01"
	CodeUndefinedColumn   = "42703"
	CodeUndefinedObject   = "42704"
	CodeInvalidSchema     = "3F000"
	CodeObjectInUse       = "55006"
	CodePrerequisite      = "55000" // object_not_in_prerequisite_state
	CodeConnectionFailure = "08001"
	CodeConnectionLost    = "08006" // connection_failure
	CodeInvalidName       = "42602"
	CodeFeatureNotSupp    = "0A000"
	CodeQueryCanceled     = "57014"
	CodeInsufficientPriv  = "42501"
	CodeDuplicateTable    = "42P07"
)

// Errorf builds a Postgres-style error with a SQLSTATE.
func Errorf(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// sourceError turns a failure to reach or use the source into an error the
// user can act on. pgconn's messages name host, port, user and database but
// never the password, and we add nothing from the connection string.
func sourceError(what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := *pe
		// A FATAL from the source ended the source connection, not the
		// client's session with us.
		c.Severity, c.SeverityUnlocalized = "ERROR", "ERROR"
		c.Message = "source: " + what + ": " + pe.Message
		return &c
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return &pgconn.PgError{Severity: "ERROR", Code: CodeConnectionFailure,
			Message: "source: " + what + ": " + ce.Error()}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// The source went away mid-call; nothing past the last committed
		// batch was confirmed, so the next call resumes there.
		return &pgconn.PgError{Severity: "ERROR", Code: CodeConnectionLost,
			Message: "source: " + what + ": connection lost: " + err.Error()}
	}
	return fmt.Errorf("source: %s: %w", what, err)
}
