package main_test

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// expectError runs sql, wants SQLSTATE code, and checks that the session
// is still usable afterwards.
func expectError(ctx context.Context, t *testing.T, conn *pgx.Conn, code, sql string, args ...any) *pgconn.PgError {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	if err == nil {
		t.Fatalf("%s: no error, want SQLSTATE %s", sql, code)
	}
	if got := pgCode(err); got != code {
		t.Fatalf("%s: error %v (SQLSTATE %q), want SQLSTATE %s", sql, err, got, code)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("session unusable after error: %v", err)
	}
	var pe *pgconn.PgError
	asPgError(err, &pe)
	return pe
}

func TestSourceErrors(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)

	t.Run("wal_level", func(t *testing.T) {
		c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		srv := pgcdctest.Start(t, pgcdctest.Options{Source: c.DSN("")})
		rep := srv.Connect(ctx, t)
		pe := expectError(ctx, t, rep, "55000", `SELECT * FROM init_replication('s1', 'p1')`)
		if !strings.Contains(pe.Message, "wal_level") {
			t.Fatalf("message %q does not name wal_level", pe.Message)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		srv := pgcdctest.Start(t, pgcdctest.Options{Source: fmt.Sprintf("postgres://postgres:hunter2secret@127.0.0.1:%d/postgres?connect_timeout=5", port)})
		rep := srv.Connect(ctx, t)
		pe := expectError(ctx, t, rep, "08001", `SELECT * FROM replicate('s1', 'p1')`)
		if strings.Contains(pe.Message+pe.Detail, "hunter2secret") || strings.Contains(srv.Logs(), "hunter2secret") {
			t.Fatal("the source password leaked into an error or the log")
		}
	})

	t.Run("login refused", func(t *testing.T) {
		u, _ := url.Parse(source.DSN(""))
		u.User = url.UserPassword("postgres", "wrong-Passw0rd-xyz")
		srv := pgcdctest.Start(t, pgcdctest.Options{Source: u.String()})
		rep := srv.Connect(ctx, t)
		pe := expectError(ctx, t, rep, "28P01", `SELECT * FROM init_replication('s1', 'p1')`)
		if strings.Contains(pe.Message+pe.Detail, "wrong-Passw0rd-xyz") || strings.Contains(srv.Logs(), "wrong-Passw0rd-xyz") {
			t.Fatal("the source password leaked into an error or the log")
		}
	})
}

// concurrentReplicate: a second replicate() on a slot that one is
// consuming fails at once with 55006, from this pgcdc or from another
// consumer, and the first call still completes.
func concurrentReplicate(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, "CREATE TABLE t (id int PRIMARY KEY, v text)")
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	srv, rep := r.srv, r.pgcdc
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('busy', 'busy_pub', table_names => ARRAY['t'])")
	mustExec(ctx, t, src, "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g")

	var wg sync.WaitGroup
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := pgx.Connect(ctx, srv.DSN())
		if err != nil {
			firstErr = err
			return
		}
		defer c.Close(context.Background())
		_, firstErr = c.Exec(ctx, "SELECT * FROM replicate('busy', 'busy_pub', target_batch_size => 500)")
	}()
	// Wait until the slot is being consumed.
	deadline := time.Now().Add(time.Minute)
	for {
		var active bool
		if err := src.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = 'busy'").Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot never became active")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	expectError(ctx, t, rep, "55006", "SELECT * FROM replicate('busy', 'busy_pub')")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("second replicate() took %v to fail; it must fail fast", d)
	}
	// Another pgcdc on the same source and slot fails fast too.
	other := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	expectError(ctx, t, other.pgcdc, "55006", "SELECT * FROM replicate('busy', 'busy_pub')")
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("first replicate: %v", firstErr)
	}
	var n int
	if err := r.data.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n); err != nil || n != 200000 {
		t.Fatalf("replica has %d rows (%v), want 200000", n, err)
	}
}

func TestRefusesOpenListenerWithoutPassword(t *testing.T) {
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	port, _ := pgtest.FreePort()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--source", "postgres://x@127.0.0.1:1/x",
		"--listen", fmt.Sprintf("0.0.0.0:%d", port), "--destination", "duckdb:"+t.TempDir()+"/x.duckdb")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "without --password") {
		t.Fatalf("pgcdc on 0.0.0.0 without a password: err=%v output=%s", err, out)
	}
}

func TestHelpListsEveryFlagAndVariable(t *testing.T) {
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	for _, want := range []string{"--source", "PGCDC_SOURCE", "--destination", "PGCDC_DESTINATION", "--listen", "PGCDC_LISTEN",
		"--password", "PGCDC_PASSWORD", "--tls-cert", "--tls-key", "duckdb:pgcdc.duckdb", "127.0.0.1:6543"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pgcdc serve --help does not mention %s:\n%s", want, out)
		}
	}
}
