package main_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// serveProcess is a `pgcdc serve` run with exactly the given arguments, for
// what pgcdctest.Start does not do: listen on every interface, or fail to
// start.
type serveProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runServe starts pgcdc serve with env added to the test's environment;
// the process is killed when the test ends.
func runServe(t *testing.T, env []string, args ...string) *serveProcess {
	t.Helper()
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--log-format", "json", "--destination", "duckdb:" + t.TempDir() + "/replica.duckdb"}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("pgcdc output:\n%s", p.out)
		}
	})
	return p
}

// wantStartFailure waits for the process to exit with an error, as a
// refused configuration must, and returns what it printed.
func (p *serveProcess) wantStartFailure(t *testing.T) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pgcdc is still running 10s after start, want it to refuse to start; output:\n%s", p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatalf("pgcdc exited 0, want an error; output:\n%s", p.out)
	}
	return p.out.String()
}

// waitListening waits until addr accepts connections.
func (p *serveProcess) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("pgcdc exited during start-up:\n%s", p.out)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pgcdc did not listen on %s within 30s:\n%s", addr, p.out)
}
