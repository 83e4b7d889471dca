package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresUpstream is a session on a Postgres server, opened for one
// forwarded client by ConnectUpstream. It implements everything in
// Upstream but Intercept, which is the handler's: embed it.
type PostgresUpstream struct {
	conn   net.Conn
	params map[string]string
	pid    uint32
	// canceller holds the upstream's cancel key and how to reach it; it
	// never reads or writes conn.
	canceller *pgconn.PgConn
}

// defaultUpstreamConnectTimeout bounds ConnectUpstream when the
// configuration sets no connect_timeout.
const defaultUpstreamConnectTimeout = 30 * time.Second

// notForwarded are the startup parameters a client does not pass on:
// who it logs in as and where are the upstream's configuration, and a
// replication connection is not a session to forward.
var notForwarded = map[string]bool{"user": true, "database": true, "replication": true}

// ConnectUpstream opens a session on the server cfg names, with cfg's
// credentials, for the client info describes. The client's startup
// parameters (application_name, options, DateStyle, TimeZone,
// client_encoding, ...) override cfg's, so the upstream session is the
// one the client asked for; user, database and replication stay cfg's.
//
// A *pgconn.PgError from the server comes back as it is, severity FATAL;
// any other failure is a FATAL 08006 that does not repeat cfg (the
// caller may log err's cause, which pgconn keeps free of passwords).
func ConnectUpstream(ctx context.Context, cfg *pgconn.Config, info SessionInfo) (*PostgresUpstream, error) {
	cfg = cfg.Copy()
	params := make(map[string]string, len(cfg.RuntimeParams)+len(info.Parameters))
	for k, v := range cfg.RuntimeParams {
		params[k] = v
	}
	delete(params, "application_name")
	for k, v := range info.Parameters {
		if !notForwarded[k] && !strings.HasPrefix(k, "_pq_.") {
			params[k] = v
		}
	}
	cfg.RuntimeParams = params
	cfg.OnNotice, cfg.OnNotification, cfg.OnPgError = nil, nil, nil
	if cfg.ConnectTimeout == 0 {
		// The client waits, holding a session slot: bound the wait for an
		// upstream that does not answer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultUpstreamConnectTimeout)
		defer cancel()
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			out := *pe
			out.Severity, out.SeverityUnlocalized = severityFatal, severityFatal
			return nil, &UpstreamError{Err: err, pgErr: &out}
		}
		return nil, &UpstreamError{Err: err, pgErr: fatalf(codeConnectionFailure, "could not connect to the upstream server")}
	}
	if err := conn.SyncConn(ctx); err != nil {
		conn.Close(context.Background())
		return nil, &UpstreamError{Err: err, pgErr: fatalf(codeConnectionFailure, "could not connect to the upstream server")}
	}
	hc, err := conn.Hijack()
	if err != nil {
		conn.Close(context.Background())
		return nil, &UpstreamError{Err: err, pgErr: fatalf(codeConnectionFailure, "could not connect to the upstream server")}
	}
	canceller, err := pgconn.Construct(hc)
	if err != nil {
		hc.Conn.Close()
		return nil, &UpstreamError{Err: err, pgErr: fatalf(codeConnectionFailure, "could not connect to the upstream server")}
	}
	return &PostgresUpstream{conn: hc.Conn, params: hc.ParameterStatuses, pid: hc.PID, canceller: canceller}, nil
}

// UpstreamError is why ConnectUpstream failed: Err for the log, and what
// the client is told.
type UpstreamError struct {
	Err   error
	pgErr *pgconn.PgError
}

func (e *UpstreamError) Error() string { return fmt.Sprintf("upstream: %v", e.Err) }
func (e *UpstreamError) Unwrap() error { return e.pgErr }

// Conn implements Upstream.
func (u *PostgresUpstream) Conn() net.Conn { return u.conn }

// Parameters implements Upstream.
func (u *PostgresUpstream) Parameters() map[string]string { return u.params }

// ProcessID implements Upstream.
func (u *PostgresUpstream) ProcessID() uint32 { return u.pid }

// Cancel implements Upstream: a CancelRequest on a new connection to the
// same server, encrypted as the session is.
func (u *PostgresUpstream) Cancel(ctx context.Context) error { return u.canceller.CancelRequest(ctx) }

// Close implements Upstream.
func (u *PostgresUpstream) Close() error { return u.conn.Close() }
