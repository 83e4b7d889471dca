package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/functions"
	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/sql"
	"github.com/pgcdc/pgcdc/wire"
)

// ServeCommand runs the server.
type ServeCommand struct {
	Source             string
	Destination        string
	Listen             string
	Password           string
	TLSCert, TLSKey    string
	LogLevel           string
	LogFormat          string
	MaxConnections     int
	MaxMessageSize     int
	IdleSessionTimeout time.Duration
	ShutdownGrace      time.Duration
	// UnsafeAllowClientFileAccess hands DuckDB's file access, attachments,
	// extensions and global settings to every client.
	UnsafeAllowClientFileAccess bool
}

// flagSpec ties a flag to its environment variable, so --help can list both.
type flagSpec struct {
	name, env, usage string
}

// ParseFlags reads flags, falling back to PGCDC_* environment variables.
func (c *ServeCommand) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("pgcdc serve", flag.ContinueOnError)
	specs := []flagSpec{}
	str := func(p *string, name, env, def, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			def = v
		}
		fs.StringVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, env, usage})
	}
	integer := func(p *int, name, env string, def int, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			if n, err := strconv.Atoi(v); err == nil {
				def = n
			}
		}
		fs.IntVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, env, usage})
	}
	var envErr error
	boolean := func(p *bool, name, env string, def bool, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			b, err := strconv.ParseBool(v)
			if err != nil && envErr == nil {
				envErr = fmt.Errorf("invalid %s=%q: want true or false", env, v)
			}
			def = b
		}
		fs.BoolVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, env, usage})
	}
	duration := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			if d, err := time.ParseDuration(v); err == nil {
				def = d
			}
		}
		fs.DurationVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, env, usage})
	}
	str(&c.Source, "source", "PGCDC_SOURCE", "", "source Postgres connection string (URL or key=value); needs wal_level=logical and a user with REPLICATION")
	str(&c.Destination, "destination", "PGCDC_DESTINATION", "duckdb:pgcdc.duckdb", "destination: duckdb:<file> (created if missing) or duckdb::memory:")
	str(&c.Listen, "listen", "PGCDC_LISTEN", "127.0.0.1:6543", "address to accept Postgres clients on")
	str(&c.Password, "password", "PGCDC_PASSWORD", "", "password clients must give (SCRAM-SHA-256); without one only loopback clients are trusted")
	str(&c.TLSCert, "tls-cert", "PGCDC_TLS_CERT", "", "TLS certificate file (PEM); enables SSL for clients")
	str(&c.TLSKey, "tls-key", "PGCDC_TLS_KEY", "", "TLS private key file (PEM)")
	str(&c.LogLevel, "log-level", "PGCDC_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.LogFormat, "log-format", "PGCDC_LOG_FORMAT", "console", "log format: console or json")
	integer(&c.MaxConnections, "max-connections", "PGCDC_MAX_CONNECTIONS", 100, "maximum concurrent client connections")
	integer(&c.MaxMessageSize, "max-message-size", "PGCDC_MAX_MESSAGE_SIZE", 64<<20, "maximum size of one client message in bytes")
	duration(&c.IdleSessionTimeout, "idle-session-timeout", "PGCDC_IDLE_SESSION_TIMEOUT", 0, "close sessions idle this long outside a transaction (0 disables)")
	duration(&c.ShutdownGrace, "shutdown-grace", "PGCDC_SHUTDOWN_GRACE", 30*time.Second, "on SIGTERM, how long running calls may finish before they are cancelled")
	boolean(&c.UnsafeAllowClientFileAccess, "unsafe-allow-client-file-access", "PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS", false,
		"UNSAFE: let every client read and write any file the pgcdc process can, ATTACH databases, INSTALL and LOAD DuckDB extensions (native code in pgcdc) and change global DuckDB settings, replication's included")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: pgcdc serve [flags]\n\nEvery flag can also be set by its environment variable; a flag wins over the variable.\n\nFlags:")
		for _, s := range specs {
			f := fs.Lookup(s.name)
			def := f.DefValue
			if s.name == "password" || s.name == "source" {
				def = "" // never echo a secret from the environment
			}
			fmt.Fprintf(fs.Output(), "  --%s (env %s)", s.name, s.env)
			if def != "" && def != "false" {
				fmt.Fprintf(fs.Output(), " default %q", def)
			}
			fmt.Fprintf(fs.Output(), "\n      %s\n", s.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	return envErr
}

// Run serves until SIGINT or SIGTERM.
func (c *ServeCommand) Run(ctx context.Context) error {
	log, err := c.logger()
	if err != nil {
		return err
	}
	if c.Source == "" {
		return errors.New("no source: pass --source or set PGCDC_SOURCE")
	}
	srcCfg, err := pgconn.ParseConfig(c.Source)
	if err != nil {
		return errors.New("invalid --source connection string (not shown: it may contain a password)")
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	defer ln.Close()
	if c.Password == "" && !isLoopback(ln.Addr()) {
		return fmt.Errorf("refusing to listen on non-loopback address %s without --password", c.Listen)
	}
	var tlsConfig *tls.Config
	if c.TLSCert != "" || c.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	if c.UnsafeAllowClientFileAccess {
		log.Warn().Msg("--unsafe-allow-client-file-access is on: every client can read and write any file pgcdc can, ATTACH databases, INSTALL and LOAD extensions and change global DuckDB settings")
	}
	dest, err := openDestination(ctx, c.Destination, duckdb.UnsafeClientFileAccess(c.UnsafeAllowClientFileAccess))
	if err != nil {
		return err
	}
	defer dest.Close()
	catalog, err := sql.LoadCatalog()
	if err != nil {
		return err
	}
	repl := replicator.New(c.Source, dest, log.With().Str("component", "replicator").Logger())
	router, err := functions.NewRouter(&functions.Env{Repl: repl, Catalog: catalog, Log: log}, dest)
	if err != nil {
		return err
	}
	srv := wire.NewServer(wire.Config{
		Password:           c.Password,
		TLS:                tlsConfig,
		MaxConnections:     c.MaxConnections,
		MaxMessageSize:     c.MaxMessageSize,
		IdleSessionTimeout: c.IdleSessionTimeout,
		ServerVersion:      "16.0",
	}, router, log.With().Str("component", "wire").Logger())

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info().Str("listen", ln.Addr().String()).Str("destination", c.Destination).
		Str("source", fmt.Sprintf("%s:%d/%s", srcCfg.Host, srcCfg.Port, srcCfg.Database)).
		Bool("password", c.Password != "").Bool("tls", tlsConfig != nil).Msg("pgcdc serving")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Dur("grace", c.ShutdownGrace).Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return nil
}

func (c *ServeCommand) logger() (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("invalid --log-level %q", c.LogLevel)
	}
	var log zerolog.Logger
	switch c.LogFormat {
	case "json":
		log = zerolog.New(os.Stderr)
	case "console":
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	default:
		return zerolog.Logger{}, fmt.Errorf("invalid --log-format %q (console or json)", c.LogFormat)
	}
	return log.Level(lvl).With().Timestamp().Logger(), nil
}

// destination is what serve needs from a destination.
type destination interface {
	replicator.Destination
	replicator.Passthrough
}

func openDestination(ctx context.Context, spec string, opts ...duckdb.Option) (destination, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "duckdb":
		if arg == "" {
			return nil, errors.New("--destination duckdb: needs a file name, e.g. duckdb:pgcdc.duckdb")
		}
		return duckdb.Open(ctx, arg, opts...)
	case "postgres", "postgresql":
		return nil, errors.New("the Postgres destination is not available yet; use duckdb:<file>")
	}
	return nil, fmt.Errorf("unknown destination %q: use duckdb:<file>", spec)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
