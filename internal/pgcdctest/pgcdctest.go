// Package pgcdctest builds the pgcdc binary and runs it as a real server
// process for integration tests, the way a user runs it.
package pgcdctest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/pgcdc once per test process and returns its path.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgcdc-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pgcdc")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/pgcdc")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pgcdc: %w\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// RemoveBinary deletes what Binary built; a test binary's TestMain calls it
// when its tests are done (each build is about 100 MB of temporary disk).
func RemoveBinary() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// Server is a running `pgcdc serve`.
type Server struct {
	Addr     string
	Port     int
	Password string
	DuckDB   string
	cmd      *exec.Cmd
	logs     *safeBuffer
	done     chan struct{}
	args     []string
	env      []string
}

// Options configure a server.
type Options struct {
	Source string
	// Destination is a --destination other than a DuckDB file, such as
	// postgres://...; when set, DuckDB is ignored.
	Destination string
	DuckDB      string // file; default a new file in t.TempDir()
	Password    string
	Extra       []string // more flags
	Env         []string
}

// Start runs pgcdc serve and waits until it accepts connections. The
// server is killed when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if o.DuckDB == "" {
		o.DuckDB = filepath.Join(t.TempDir(), "replica.duckdb")
	}
	s := &Server{DuckDB: o.DuckDB, Password: o.Password}
	dest := "duckdb:" + o.DuckDB
	s.env = append(os.Environ(), "PGCDC_SOURCE="+o.Source)
	if o.Destination != "" {
		// In the environment: it may hold a password.
		dest = ""
		s.env = append(s.env, "PGCDC_DESTINATION="+o.Destination)
	}
	if o.Password != "" {
		s.env = append(s.env, "PGCDC_PASSWORD="+o.Password)
	}
	s.env = append(s.env, o.Env...)
	// The free port can be taken by another process before pgcdc binds it
	// (tests start servers and clusters in parallel): then try another.
	for attempt := 1; ; attempt++ {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Port = port
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		s.args = []string{"serve", "--listen", s.Addr, "--log-format", "json", "--log-level", "debug"}
		if dest != "" {
			s.args = append(s.args, "--destination", dest)
		}
		s.args = append(s.args, o.Extra...)
		s.logs = &safeBuffer{}
		err = s.start(bin)
		if err == nil {
			break
		}
		if attempt < 5 && strings.Contains(s.Logs(), "address already in use") {
			continue
		}
		t.Fatalf("%v\nlogs:\n%s", err, s.Logs())
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("pgcdc logs:\n%s", s.Logs())
		}
	})
	return s
}

func (s *Server) start(bin string) error {
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Env = s.env
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	// Its own process group, so a test can SIGKILL it like a crash.
	// Pdeathsig: a test binary that dies (a timeout) takes the server along.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("pgcdc exited during start-up")
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("pgcdc did not accept connections within 30s")
}

// Restart starts the server again with the same flags (after Kill).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, _ := Binary()
	if err := s.start(bin); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, s.Logs())
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Signal sends sig and waits up to timeout for the process to exit.
func (s *Server) Signal(sig os.Signal, timeout time.Duration) error {
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("pgcdc still running %s after %v", timeout, sig)
	}
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Logs returns everything the server printed.
func (s *Server) Logs() string { return s.logs.String() }

// LogsContain reports whether the logs hold substr within timeout: the
// process's output reaches them through a pipe, so a line written before
// the server accepted connections may still be on its way.
func (s *Server) LogsContain(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(s.Logs(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DSN is a connection string for clients of this server.
func (s *Server) DSN() string {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=tester dbname=pgcdc sslmode=disable connect_timeout=10", s.Port)
	if s.Password != "" {
		dsn += " password=" + s.Password
	}
	return dsn
}

// Connect opens a pgx connection to the server.
func (s *Server) Connect(ctx context.Context, t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatalf("connect to pgcdc: %v\nlogs:\n%s", err, s.Logs())
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }
