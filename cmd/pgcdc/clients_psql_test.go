package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// psqlCommand builds a psql command against the client setup's server:
// quiet (no command tags), unaligned, tuples only, no ~/.psqlrc.
func psqlCommand(ctx context.Context, t *testing.T, c *clientSetup, sslmode string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("psql")
	if err != nil {
		requireClient(t, "psql is not installed (postgresql-client): %v", err)
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=psql_user dbname=pgcdc sslmode=%s connect_timeout=10 application_name=psql-scenario",
		c.srv.Port, sslmode)
	cmd := exec.CommandContext(ctx, path, append([]string{"-X", "-q", "-A", "-t", "-d", conninfo}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PGPASSWORD="+clientPassword)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runPsql runs psql with script on standard input and returns what it
// printed on stdout and stderr.
func runPsql(ctx context.Context, t *testing.T, c *clientSetup, sslmode, script string, args ...string) (string, string, error) {
	t.Helper()
	cmd := psqlCommand(ctx, t, c, sslmode, append(args, "-f", "-")...)
	cmd.Stdin = strings.NewReader(script)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), err
}

// psqlMajor is the major version of the psql on PATH.
func psqlMajor(t *testing.T) int {
	out, err := exec.Command("psql", "--version").Output()
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(\d+)(\.\d+)?`).FindStringSubmatch(string(out))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestClientPsql runs the client scenario with psql: TLS with SCRAM,
// NOTICEs shown while a call runs, several statements in one message,
// errors with their SQLSTATE, transaction blocks, and Ctrl-C (SIGINT, which
// makes psql send a CancelRequest) during a long replicate().
func TestClientPsql(t *testing.T) { forEachClientDestination(t, clientPsql) }

func clientPsql(t *testing.T, d clientDestination) {
	ctx := testContext(t, 3*time.Minute)
	c := startClientSetup(ctx, t, d, "psql")
	if _, err := exec.LookPath("psql"); err != nil {
		requireClient(t, "psql is not installed (postgresql-client): %v", err)
	}
	t.Logf("psql major version %d", psqlMajor(t))

	// tls
	out, errOut, err := runPsql(ctx, t, c, "require", `\conninfo
SELECT 'over tls';`)
	if err != nil || !strings.Contains(out, "SSL connection") || !strings.HasSuffix(out, "over tls") {
		t.Fatalf("psql over TLS: %v\n%s\n%s", err, out, errOut)
	}

	// bad_password
	cmd := psqlCommand(ctx, t, c, "disable", "-c", "SELECT 1")
	cmd.Env = append(cmd.Env, "PGPASSWORD=wrong")
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "password authentication failed") {
		t.Fatalf("wrong password: %v %s", err, msg)
	}

	// init, with its progress NOTICEs on stderr.
	out, errOut, err = runPsql(ctx, t, c, "disable", fmt.Sprintf(`\set ON_ERROR_STOP 1
SELECT table_name, snapshot_rows FROM init_replication('%s', '%s', schema_name => 'shop',
    table_names => ARRAY['orders', 'customers', 'big'], persist_snapshots => true);`, c.slot, c.pub))
	if err != nil || out != "shop.orders|3\nshop.customers|3\nshop.big|0" {
		t.Fatalf("init_replication: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "NOTICE:  snapshot shop.orders: 3 rows copied") {
		t.Fatalf("no snapshot NOTICE on psql's stderr:\n%s", errOut)
	}

	// replicate, with bound parameters where psql has them (\bind, psql 16+),
	// and passthrough; several statements in one -c string are one Query
	// message, and psql shows every result.
	mustExec(ctx, t, c.src, `INSERT INTO shop.orders (customer_id, amount, note) VALUES (4, 4.40, 'psql');
		UPDATE shop.customers SET name = 'Ada L.' WHERE id = 1`)
	call := fmt.Sprintf(`SELECT table_name, inserts, updates FROM replicate('%s', '%s');`, c.slot, c.pub)
	if psqlMajor(t) >= 16 {
		call = `SELECT table_name, inserts, updates FROM replicate($1, $2) \bind ` + c.slot + " " + c.pub + ` \g`
	}
	out, errOut, err = runPsql(ctx, t, c, "disable", `\set ON_ERROR_STOP 1
`+call)
	got := strings.Split(out, "\n")
	slices.Sort(got)
	if err != nil || strings.Join(got, "\n") != "shop.customers|0|1\nshop.orders|1|0" {
		t.Fatalf("replicate: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = runPsql(ctx, t, c, "disable", "", "-c",
		`/* {"app": "dbt"} */ SELECT count(*) FROM shop.orders; SELECT name FROM shop.customers WHERE id = 1`)
	if err != nil || out != "4\nAda L." {
		t.Fatalf("multi-statement query: %v\n%s\n%s", err, out, errOut)
	}
	sameRows(ctx, t, c.src, c.srv.Connect(ctx, t), srcOrders, repOrders)

	// error and transaction, in one session: the error shows its SQLSTATE,
	// the session goes on, and a failed block refuses statements until
	// ROLLBACK.
	out, errOut, err = runPsql(ctx, t, c, "disable", fmt.Sprintf(`\set VERBOSITY verbose
SELECT * FROM replicate('%[1]s', '%[2]s', bogus => 1);
SELECT 'recovered';
BEGIN;
SELECT * FROM replicate('%[1]s', '%[2]s', nope => 1);
SELECT 'refused';
ROLLBACK;
SELECT 'after rollback';`, c.slot, c.pub))
	if err != nil || out != "recovered\nafter rollback" {
		t.Fatalf("errors: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "ERROR:  42883:") || !strings.Contains(errOut, "ERROR:  25P02:") {
		t.Fatalf("errors without 42883 and 25P02:\n%s", errOut)
	}

	// cancel: Ctrl-C while replicate() runs, sent once psql has printed the
	// first progress NOTICE (so NOTICEs reach psql while the call runs).
	mustExec(ctx, t, c.src, fmt.Sprintf("INSERT INTO shop.big SELECT g, g FROM generate_series(1, %d) g", bigRows))
	cmd = psqlCommand(ctx, t, c, "disable", "-v", "ON_ERROR_STOP=1", "-c",
		fmt.Sprintf("SELECT * FROM replicate('%s', '%s', target_batch_size => 10)", c.slot, c.pub))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	interrupted := false
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !interrupted && strings.Contains(sc.Text(), "NOTICE:") && strings.Contains(sc.Text(), "changes applied") {
			interrupted = true
			t.Logf("first progress NOTICE after %v; sending SIGINT", time.Since(start))
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	all := strings.Join(lines, "\n")
	if !interrupted {
		t.Fatalf("psql never showed a progress NOTICE: %v\n%s", err, all)
	}
	if err == nil || !strings.Contains(all, "ERROR:  canceling statement due to user request") {
		t.Fatalf("Ctrl-C: %v\n%s", err, all)
	}

	// after_cancel: at once, the slot must already be free
	out, errOut, err = runPsql(ctx, t, c, "disable", fmt.Sprintf(`\set ON_ERROR_STOP 1
SELECT table_name, inserts FROM replicate('%s', '%s');`, c.slot, c.pub))
	if err != nil || out != fmt.Sprintf("shop.big|%d", bigRows) {
		t.Fatalf("replicate after cancel: %v\n%s\n%s", err, out, errOut)
	}
	c.verify(ctx, t)
}
