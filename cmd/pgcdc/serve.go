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
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/functions"
	"github.com/pgcdc/pgcdc/internal/metrics"
	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/replicator/postgres"
	"github.com/pgcdc/pgcdc/sql"
	"github.com/pgcdc/pgcdc/wire"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// DefaultDuckDBMemoryLimit is the default of --duckdb-memory-limit.
const DefaultDuckDBMemoryLimit = 1 << 30

// ServeCommand runs the server.
type ServeCommand struct {
	Source                        string
	Destination                   string
	Listen                        string
	MetricsListen                 string
	Password                      string
	TLSCert, TLSKey               string
	TLSRequired                   *bool // nil: decided by the address and password, see Run
	LogLevel                      string
	LogFormat                     string
	MaxConnections                int
	MaxUnauthenticatedConnections int
	MaxMessageSize                int
	AuthenticationTimeout         time.Duration
	AuthFailureDelay              time.Duration
	IdleSessionTimeout            time.Duration
	ShutdownGrace                 time.Duration
	BatchMemory                   byteSize
	DuckDBMemoryLimit             byteSize
	// UnsafeAllowClientFileAccess hands DuckDB's file access, attachments,
	// extensions and global settings to every client.
	UnsafeAllowClientFileAccess bool

	// secretsInArgs are the flags holding secrets that were given on the
	// command line, where other local users can read them.
	secretsInArgs []flagSpec
}

// flagSpec ties a flag to its environment variable, so --help can list both.
type flagSpec struct {
	name, env, usage string
}

// secretFlags hold secrets: --help never shows their values, and Run warns
// when they are given on the command line.
var secretFlags = map[string]bool{"source": true, "password": true}

// ParseFlags reads flags, falling back to PGCDC_* environment variables. An
// environment value that does not parse is an error, as a bad flag is: a
// typo must not quietly leave a limit at its default.
func (c *ServeCommand) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("pgcdc serve", flag.ContinueOnError)
	specs := []flagSpec{}
	var envErrs []error
	env := func(name, want string, parse func(string) error) {
		if v, ok := os.LookupEnv(name); ok {
			if err := parse(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("invalid %s=%q: want %s", name, v, want))
			}
		}
	}
	str := func(p *string, name, envName, def, usage string) {
		env(envName, "", func(v string) error { def = v; return nil })
		fs.StringVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, envName, usage})
	}
	integer := func(p *int, name, envName string, def int, usage string) {
		env(envName, "an integer", func(v string) (err error) {
			def, err = strconv.Atoi(v)
			return err
		})
		fs.IntVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, envName, usage})
	}
	boolean := func(p *bool, name, envName string, def bool, usage string) {
		env(envName, "true or false", func(v string) (err error) {
			def, err = strconv.ParseBool(v)
			return err
		})
		fs.BoolVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, envName, usage})
	}
	duration := func(p *time.Duration, name, envName string, def time.Duration, usage string) {
		env(envName, "a duration such as 500ms, 10s or 1m", func(v string) (err error) {
			def, err = time.ParseDuration(v)
			return err
		})
		fs.DurationVar(p, name, def, usage)
		specs = append(specs, flagSpec{name, envName, usage})
	}
	optionalBool := func(p **bool, name, envName, usage string) {
		env(envName, "true or false", func(v string) error { return setOptionalBool(p, v) })
		fs.Var(optionalBoolFlag{p}, name, usage)
		specs = append(specs, flagSpec{name, envName, usage})
	}
	str(&c.Source, "source", "PGCDC_SOURCE", "", "source Postgres connection string (URL or key=value); needs wal_level=logical and a user with REPLICATION. "+
		"It usually holds a password: set PGCDC_SOURCE rather than the flag, which other local users can read with ps")
	str(&c.Destination, "destination", "PGCDC_DESTINATION", "duckdb:pgcdc.duckdb", "destination: duckdb:<file> (created if missing), duckdb::memory:, "+
		"or a Postgres database, postgres://user:password@host/db, which pgcdc then serves as a transparent proxy. "+
		"A Postgres URL usually holds a password: set PGCDC_DESTINATION rather than the flag, which other local users can read with ps")
	str(&c.Listen, "listen", "PGCDC_LISTEN", "127.0.0.1:6543", "address to accept Postgres clients on")
	str(&c.MetricsListen, "metrics-listen", "PGCDC_METRICS_LISTEN", "", "address to serve Prometheus /metrics and /healthz on, unauthenticated; "+
		"off when empty, and a port alone (9187 or :9187) listens on loopback only")
	str(&c.Password, "password", "PGCDC_PASSWORD", "", "password clients must give (SCRAM-SHA-256); without one only loopback clients are trusted. "+
		"Set PGCDC_PASSWORD rather than the flag, which other local users can read with ps")
	str(&c.TLSCert, "tls-cert", "PGCDC_TLS_CERT", "", "TLS certificate file (PEM); enables SSL for clients")
	str(&c.TLSKey, "tls-key", "PGCDC_TLS_KEY", "", "TLS private key file (PEM)")
	optionalBool(&c.TLSRequired, "tls-required", "PGCDC_TLS_REQUIRED", "refuse clients that do not use TLS (FATAL 28000, before any password exchange); "+
		"default true when --listen is reachable from other hosts and --password is set, false otherwise. Needs --tls-cert and --tls-key")
	str(&c.LogLevel, "log-level", "PGCDC_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.LogFormat, "log-format", "PGCDC_LOG_FORMAT", "console", "log format: console or json")
	integer(&c.MaxConnections, "max-connections", "PGCDC_MAX_CONNECTIONS", 100, "maximum concurrent authenticated client sessions; "+
		"connections still authenticating do not count (see --max-unauthenticated-connections)")
	integer(&c.MaxUnauthenticatedConnections, "max-unauthenticated-connections", "PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS", 32,
		"maximum connections still authenticating, counted from accept and apart from --max-connections; past it a new connection "+
			"gets FATAL 53300 (sorry, too many clients already) and is closed at once, and authenticated sessions are unaffected")
	integer(&c.MaxMessageSize, "max-message-size", "PGCDC_MAX_MESSAGE_SIZE", 64<<20, "maximum size of one client message in bytes")
	duration(&c.AuthenticationTimeout, "authentication-timeout", "PGCDC_AUTHENTICATION_TIMEOUT", 10*time.Second,
		"how long a client has from connecting to being authenticated (TLS handshake, startup packet, password exchange) before it is disconnected")
	duration(&c.AuthFailureDelay, "auth-failure-delay", "PGCDC_AUTH_FAILURE_DELAY", time.Second,
		"how long a client that gave a wrong password waits for its error (0 disables); it keeps its unauthenticated slot meanwhile, "+
			"so password guesses are bounded by --max-unauthenticated-connections per delay (32 a second by default)")
	duration(&c.IdleSessionTimeout, "idle-session-timeout", "PGCDC_IDLE_SESSION_TIMEOUT", 0, "close sessions idle this long outside a transaction (0 disables)")
	c.BatchMemory = replicator.DefaultBatchBytes
	env("PGCDC_BATCH_MEMORY", "a size such as 64MB", c.BatchMemory.Set)
	fs.Var(&c.BatchMemory, "batch-memory", "row data held in memory at once by a snapshot chunk or a batch of changes, "+
		"whatever the row size (target_batch_size counts rows); e.g. 64MB. DuckDB's own memory is --duckdb-memory-limit")
	specs = append(specs, flagSpec{"batch-memory", "PGCDC_BATCH_MEMORY", fs.Lookup("batch-memory").Usage})
	c.DuckDBMemoryLimit = DefaultDuckDBMemoryLimit
	env("PGCDC_DUCKDB_MEMORY_LIMIT", "a size such as 256MB", c.DuckDBMemoryLimit.Set)
	fs.Var(&c.DuckDBMemoryLimit, "duckdb-memory-limit", "memory the DuckDB destination may use (DuckDB's memory_limit): its cached table data, "+
		"the open transaction's rows and the work of every query, client queries included; past it DuckDB spills to <file>.tmp next to the database "+
		"file instead of growing. A memory_limit in --destination (duckdb:file?memory_limit=1GB) wins over it. Unused with a Postgres destination")
	specs = append(specs, flagSpec{"duckdb-memory-limit", "PGCDC_DUCKDB_MEMORY_LIMIT", fs.Lookup("duckdb-memory-limit").Usage})
	duration(&c.ShutdownGrace, "shutdown-grace", "PGCDC_SHUTDOWN_GRACE", 30*time.Second, "on SIGTERM, how long running calls may finish before they are cancelled")
	boolean(&c.UnsafeAllowClientFileAccess, "unsafe-allow-client-file-access", "PGCDC_UNSAFE_ALLOW_CLIENT_FILE_ACCESS", false,
		"UNSAFE: let every client read and write any file the pgcdc process can, ATTACH databases, INSTALL and LOAD DuckDB extensions (native code in pgcdc) and change global DuckDB settings, replication's included")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: pgcdc serve [flags]

Every flag can also be set by its environment variable; a flag wins over the variable.
Pass secrets in the environment: other local users can read command-line flags with ps,
so set PGCDC_SOURCE and PGCDC_PASSWORD rather than --source and --password.

Flags:
`)
		for _, s := range specs {
			f := fs.Lookup(s.name)
			def := f.DefValue
			if secretFlags[s.name] || s.name == "destination" && isPostgresURL(def) {
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
	if len(envErrs) > 0 {
		return errors.Join(envErrs...)
	}
	if fs.NArg() > 0 {
		// Also what "--tls-required false" leaves behind: a boolean flag
		// takes its value only as --tls-required=false.
		return fmt.Errorf("unexpected argument %q (give a boolean flag's value as --flag=false)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		if secretFlags[f.Name] || f.Name == "destination" && hasPassword(c.Destination) {
			for _, s := range specs {
				if s.name == f.Name {
					c.secretsInArgs = append(c.secretsInArgs, s)
				}
			}
		}
	})
	return c.validate()
}

// validate rejects limits that cannot be meant, instead of letting the
// server replace them with a default.
func (c *ServeCommand) validate() error {
	for _, n := range []struct {
		flag, env string
		v, min    int
	}{
		{"max-connections", "PGCDC_MAX_CONNECTIONS", c.MaxConnections, 1},
		{"max-unauthenticated-connections", "PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS", c.MaxUnauthenticatedConnections, 1},
		{"max-message-size", "PGCDC_MAX_MESSAGE_SIZE", c.MaxMessageSize, 1},
	} {
		if n.v < n.min {
			return fmt.Errorf("invalid --%s (%s) %d: must be at least %d", n.flag, n.env, n.v, n.min)
		}
	}
	for _, d := range []struct {
		flag, env string
		v         time.Duration
		positive  bool
	}{
		{"authentication-timeout", "PGCDC_AUTHENTICATION_TIMEOUT", c.AuthenticationTimeout, true},
		{"auth-failure-delay", "PGCDC_AUTH_FAILURE_DELAY", c.AuthFailureDelay, false},
		{"idle-session-timeout", "PGCDC_IDLE_SESSION_TIMEOUT", c.IdleSessionTimeout, false},
		{"shutdown-grace", "PGCDC_SHUTDOWN_GRACE", c.ShutdownGrace, false},
	} {
		if d.v < 0 || (d.positive && d.v == 0) {
			want := "must not be negative"
			if d.positive {
				want = "must be more than 0"
			}
			return fmt.Errorf("invalid --%s (%s) %v: %s", d.flag, d.env, d.v, want)
		}
	}
	return nil
}

// optionalBoolFlag is a boolean flag whose absence is kept apart from
// false, for a default that is only known once the address is.
type optionalBoolFlag struct{ p **bool }

func (b optionalBoolFlag) String() string {
	if b.p == nil || *b.p == nil {
		return ""
	}
	return strconv.FormatBool(**b.p)
}

func (b optionalBoolFlag) Set(v string) error { return setOptionalBool(b.p, v) }
func (b optionalBoolFlag) IsBoolFlag() bool   { return true }

func setOptionalBool(p **bool, v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*p = &x
	return nil
}

// Run serves until SIGINT or SIGTERM.
func (c *ServeCommand) Run(ctx context.Context) error {
	log, err := c.logger()
	if err != nil {
		return err
	}
	for _, s := range c.secretsInArgs {
		log.Warn().Str("flag", "--"+s.name).Str("use_instead", s.env).
			Msgf("--%s was given on the command line, where other local users can read it with ps; set %s instead", s.name, s.env)
	}
	if c.Source == "" {
		return errors.New("no source: set PGCDC_SOURCE (or pass --source)")
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
	// Over SCRAM the password itself never crosses the wire, but an
	// eavesdropper still gets the exchange to attack offline, and every
	// query and row: on an address other hosts can reach, TLS is the
	// default.
	networked := !isLoopback(ln.Addr())
	tlsRequired := c.Password != "" && networked
	if c.TLSRequired != nil {
		tlsRequired = *c.TLSRequired
	}
	if tlsRequired && tlsConfig == nil {
		why := "--tls-required is set"
		if c.TLSRequired == nil {
			why = fmt.Sprintf("TLS is required by default on %s, which other hosts can reach, with a password", c.Listen)
		}
		return fmt.Errorf("%s, but no --tls-cert and --tls-key are given: pass a certificate and key with --tls-cert and --tls-key "+
			"(PGCDC_TLS_CERT, PGCDC_TLS_KEY), or --tls-required=false (PGCDC_TLS_REQUIRED=false) to accept clients without encryption", why)
	}
	if networked && !tlsRequired {
		log.Warn().Str("listen", ln.Addr().String()).Msg("TLS is not required on an address other hosts can reach: clients may connect without encryption")
	}

	catalog, err := sql.LoadCatalog()
	if err != nil {
		return err
	}
	wireCfg := wire.Config{
		Password:                      c.Password,
		TLS:                           tlsConfig,
		TLSRequired:                   tlsRequired,
		MaxConnections:                c.MaxConnections,
		MaxUnauthenticatedConnections: c.MaxUnauthenticatedConnections,
		AuthenticationTimeout:         c.AuthenticationTimeout,
		AuthFailureDelay:              c.AuthFailureDelay,
		MaxMessageSize:                c.MaxMessageSize,
		IdleSessionTimeout:            c.IdleSessionTimeout,
		ServerVersion:                 "16.0",
	}
	wireLog := log.With().Str("component", "wire").Logger()
	var srv *wire.Server
	var repl *replicator.Replicator
	var destName string
	if isPostgresURL(c.Destination) {
		// Over Postgres pgcdc is a transparent proxy: every client session
		// is forwarded to a session of its own on the destination, and
		// only calls of our functions are answered here.
		if c.UnsafeAllowClientFileAccess {
			log.Warn().Msg("--unsafe-allow-client-file-access has no effect over a Postgres destination: what clients may do there is the destination's own privileges")
		}
		dest, err := postgres.Open(ctx, c.Destination)
		if err != nil {
			return err
		}
		defer dest.Close()
		cfg := dest.Config()
		destName = fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
		if err := functions.DeclareFunctions(ctx, cfg, catalog); err != nil {
			// Calls work without it; only discovery (\df pgcdc.*) does not.
			log.Warn().Err(err).Msg("the destination does not list pgcdc's functions: declaring them in schema pgcdc failed")
		}
		repl = replicator.New(c.Source, dest, log.With().Str("component", "replicator").Logger())
		repl.BatchBytes = int64(c.BatchMemory)
		proxy, err := functions.NewProxy(&functions.Env{Repl: repl, Catalog: catalog, Log: log}, cfg)
		if err != nil {
			return err
		}
		srv = wire.NewForwardingServer(wireCfg, proxy, wireLog)
	} else {
		if c.UnsafeAllowClientFileAccess {
			log.Warn().Msg("--unsafe-allow-client-file-access is on: every client can read and write any file pgcdc can, ATTACH databases, INSTALL and LOAD extensions and change global DuckDB settings")
		}
		dest, err := openDestination(ctx, c.Destination, duckdb.UnsafeClientFileAccess(c.UnsafeAllowClientFileAccess),
			duckdb.MemoryLimit(int64(c.DuckDBMemoryLimit)))
		if err != nil {
			return err
		}
		defer dest.Close()
		destName = c.Destination
		repl = replicator.New(c.Source, dest, log.With().Str("component", "replicator").Logger())
		repl.BatchBytes = int64(c.BatchMemory)
		router, err := functions.NewRouter(&functions.Env{Repl: repl, Catalog: catalog, Log: log}, dest)
		if err != nil {
			return err
		}
		srv = wire.NewServer(wireCfg, router, wireLog)
	}

	if path := os.Getenv("PGCDC_CPU_PROFILE"); path != "" {
		// For profiling (bench/): a CPU profile of the whole run, written
		// at shutdown.
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("PGCDC_CPU_PROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("PGCDC_CPU_PROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if c.MetricsListen != "" {
		m := metrics.New(repl.Status)
		repl.SetObserver(m)
		addr, err := m.Serve(ctx, c.MetricsListen, log)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w", c.MetricsListen, err)
		}
		log.Info().Str("metrics_listen", addr).Msg("serving /metrics and /healthz")
	}
	log.Info().Str("listen", ln.Addr().String()).Str("destination", destName).
		Str("source", fmt.Sprintf("%s:%d/%s", srcCfg.Host, srcCfg.Port, srcCfg.Database)).
		Bool("password", c.Password != "").Bool("tls", tlsConfig != nil).Bool("tls_required", tlsRequired).Msg("pgcdc serving")

	// Slots that replicated continuously before a restart go on.
	if slots, err := repl.ResumeAll(ctx); err != nil {
		return err
	} else if len(slots) > 0 {
		log.Info().Strs("slots", slots).Msg("resuming continuous replication")
	}

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
	// Continuous slots drain alongside the client calls, within the same
	// grace; they stay recorded as running for the next start.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		repl.Shutdown(sctx)
	}()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Err(err).Msg("shutdown")
	}
	<-drained
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

// destination is what serve needs from a DuckDB destination.
type destination interface {
	replica.Destination
	sql.Backend
}

func openDestination(ctx context.Context, spec string, opts ...duckdb.Option) (destination, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "duckdb":
		if arg == "" {
			return nil, errors.New("--destination duckdb: needs a file name, e.g. duckdb:pgcdc.duckdb")
		}
		return duckdb.Open(ctx, arg, opts...)
	}
	// Only the kind: the rest may hold a password.
	if _, _, ok := strings.Cut(spec, ":"); ok && !strings.ContainsAny(kind, " =@/") {
		return nil, fmt.Errorf("unknown destination kind %q: use duckdb:<file> or postgres://user:password@host/db", kind)
	}
	return nil, errors.New("unknown destination (not shown: it may hold a password): use duckdb:<file> or postgres://user:password@host/db")
}

// isPostgresURL reports a destination that is a Postgres database.
func isPostgresURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// hasPassword reports a Postgres destination URL that holds a password.
func hasPassword(spec string) bool {
	if !isPostgresURL(spec) {
		return false
	}
	cfg, err := pgconn.ParseConfig(spec)
	return err != nil || cfg.Password != ""
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
