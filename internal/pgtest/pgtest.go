// Package pgtest starts throwaway Postgres clusters for tests: initdb into a
// temporary directory, wal_level=logical, a free loopback port, SCRAM
// passwords. It never uses a server that is already running.
//
// initdb refuses to run as root, so when the tests run as root the cluster is
// created and run as the "postgres" OS user.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Password is the superuser password of every test cluster. It is a test
// fixture, not a secret.
const Password = "pgtest-secret"

// ErrNoServer means no Postgres server binaries were found.
var ErrNoServer = errors.New("pgtest: no postgres server binaries (initdb, pg_ctl) found; install the postgresql package")

// Cluster is one running throwaway Postgres.
type Cluster struct {
	Port    int
	Dir     string // data directory
	BinDir  string
	logFile string
	cred    *syscall.Credential
	mu      sync.Mutex
	stopped bool
}

// Options tune a cluster.
type Options struct {
	// Settings are extra postgresql.conf settings.
	Settings map[string]string
}

// BinDir finds the directory holding initdb and pg_ctl: $PGCDC_PG_BINDIR, the
// newest /usr/lib/postgresql/*/bin, or $PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PGCDC_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoServer
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// FreePort asks the kernel for a free port.
// The port is taken on every address, not only loopback, so that tests
// that listen on 0.0.0.0 do not meet a loopback socket already using it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start creates and starts a new cluster. The caller must Stop it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{BinDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs a postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	base, err := os.MkdirTemp("", "pgcdc-pgtest-")
	if err != nil {
		return nil, err
	}
	c.Dir = filepath.Join(base, "data")
	c.logFile = filepath.Join(base, "postgres.log")
	pwFile := filepath.Join(base, "pw")
	if err := os.WriteFile(pwFile, []byte(Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := chownR(base, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}
	if out, err := c.run(ctx, "initdb", "-D", c.Dir, "-U", "postgres", "--pwfile", pwFile,
		"--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	settings := map[string]string{
		"wal_level":               "logical",
		"max_replication_slots":   "50",
		"max_wal_senders":         "50",
		"max_connections":         "200",
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + base + "'",
		"shared_buffers":          "64MB",
		"wal_sender_timeout":      "60s",
		"log_min_messages":        "warning",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	var conf strings.Builder
	for k, v := range settings {
		fmt.Fprintf(&conf, "%s = %s\n", k, v)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(conf.String()); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	// A port can be taken between FreePort and the server binding it; retry.
	for attempt := 0; ; attempt++ {
		if c.Port, err = FreePort(); err != nil {
			return nil, err
		}
		if err = c.start(ctx); err == nil {
			return c, nil
		}
		if attempt == 3 {
			return nil, err
		}
	}
}

func (c *Cluster) start(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-l", c.logFile, "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d", c.Port), "start")
	if err != nil {
		log, _ := os.ReadFile(c.logFile)
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, tail(log, 2000))
	}
	return nil
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Dir = os.TempDir()
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// DSN is a URL for database db (default "postgres") as the superuser.
func (c *Cluster) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", Password),
		Host: fmt.Sprintf("127.0.0.1:%d", c.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Connect opens a pgx connection to db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.DSN(db))
}

// Exec runs SQL on db and closes the connection.
func (c *Cluster) Exec(ctx context.Context, db, sql string, args ...any) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// CreateDatabase creates a fresh database, so tests sharing one cluster do
// not see each other's tables, slots' publications or schemas.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return c.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// Restart stops the server (fast or immediate) and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context, immediate bool) error {
	mode := "fast"
	if immediate {
		mode = "immediate"
	}
	if out, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", mode, "-w", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return c.start(ctx)
}

// Stop stops the server and removes its files.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", "immediate", "-w", "stop")
	if err != nil {
		err = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	os.RemoveAll(filepath.Dir(c.Dir))
	return err
}

// Log returns the tail of the server log, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logFile)
	return tail(b, 4000)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func chownR(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}
