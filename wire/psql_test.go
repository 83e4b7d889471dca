package wire_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/testcert"
	"github.com/pgcdc/pgcdc/wire"
)

// runPsql runs psql against ts and returns stdout, stderr and the error.
func runPsql(t *testing.T, ts *testServer, password, sslmode string, args ...string) (string, string, error) {
	t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed: ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args = append([]string{"-X", "-A", "-t", "-w", "-h", ts.host, "-p", ts.port, "-U", "alice", "-d", "appdb"}, args...)
	cmd := exec.CommandContext(ctx, psql, args...)
	env := []string{"PGCONNECT_TIMEOUT=5", "PGSSLMODE=" + sslmode, "PGAPPNAME=psqltest", "HOME=" + t.TempDir()}
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestPsql(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql not installed: ", err)
	}
	ts := startServer(t, wire.Config{Password: "s3cret", TLS: testcert.Config(t)})
	for _, sslmode := range []string{"disable", "require"} {
		t.Run(sslmode, func(t *testing.T) {
			out, errOut, err := runPsql(t, ts, "s3cret", sslmode, "-c", "select 42")
			if err != nil || out != "42\n" {
				t.Fatalf("select 42: %q, %q, %v", out, errOut, err)
			}
			if info := ts.h.info(); info.Application != "psqltest" {
				t.Errorf("application_name %q", info.Application)
			}
		})
	}
	t.Run("several statements", func(t *testing.T) {
		out, errOut, err := runPsql(t, ts, "s3cret", "prefer", "-c", "select 1; series 3; echo hi")
		if err != nil || out != "1\n1\n2\n3\nhi\n" {
			t.Fatalf("got %q, %q, %v", out, errOut, err)
		}
	})
	t.Run("types as text", func(t *testing.T) {
		out, errOut, err := runPsql(t, ts, "s3cret", "disable", "-F", ";", "-c", "types")
		want := `9007199254740993;-7;3;3.25;1.5;t;2024-05-06 07:08:09.123456+00;héllo;\x000102ff;12345;3.14159;2024-05-06;{"a": 1};a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11;{x,"y z"};;42;` + "\n"
		if err != nil || out != want {
			t.Fatalf("got %q, %q, %v", out, errOut, err)
		}
	})
	t.Run("error and notice", func(t *testing.T) {
		_, errOut, err := runPsql(t, ts, "s3cret", "disable", "-c", "notice 1", "-c", "error 22012")
		if err == nil || !strings.Contains(errOut, "NOTICE:  notice 1") || !strings.Contains(errOut, "ERROR:  fake error 22012") ||
			!strings.Contains(errOut, "DETAIL:  some detail") || !strings.Contains(errOut, "HINT:  some hint") {
			t.Fatalf("got %q, %v", errOut, err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, errOut, err := runPsql(t, ts, "nope", "disable", "-c", "select 1")
		if err == nil || !strings.Contains(errOut, `password authentication failed for user "alice"`) {
			t.Fatalf("got %q, %v", errOut, err)
		}
	})
	t.Run("no password", func(t *testing.T) {
		_, errOut, err := runPsql(t, ts, "", "disable", "-c", "select 1")
		if err == nil || !strings.Contains(errOut, "no password supplied") {
			t.Fatalf("got %q, %v", errOut, err)
		}
	})
}
