package main_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/testcert"
)

// The client tests drive real Postgres client libraries against a real
// pgcdc: psql, pgx, psycopg2, pgJDBC and node-postgres. Each one runs the
// same scenario, written in the client's own language under
// internal/clients/, against a server with a password (SCRAM-SHA-256) and a
// TLS certificate:
//
//	tls              connect over TLS with SCRAM and run a query
//	bad_password     a wrong password is refused with 28P01
//	init             init_replication with literals; progress NOTICEs arrive
//	replicate        changes on the source, then replicate() with bound parameters
//	passthrough      the replica read back through passthrough equals the source
//	error            an unknown argument fails with 42883, and the session recovers
//	transaction      a failed statement aborts the transaction block (25P02) until ROLLBACK
//	cancel           a long replicate() is cancelled with the client's cancel API (57014)
//	after_cancel     the next replicate() completes and the replica equals the source
//
// A script prints "ok <step> ..." for every step it passed and exits
// non-zero on the first failure. The Go test checks that every step was
// reported and then compares replica and source itself.

// clientSteps are the steps every scenario must report.
var clientSteps = []string{"tls", "bad_password", "init", "replicate", "passthrough", "error", "transaction", "cancel", "after_cancel"}

// clientSchema is the source schema of the scenario: shopSchema and a table
// that the cancel step fills with bigRows rows, so that replicate() with a
// tiny batch size takes long enough to be cancelled.
const clientSchema = shopSchema + `CREATE TABLE shop.big (id int PRIMARY KEY, v int);`

// bigRows is how many source rows the cancel step changes. replicate()
// with target_batch_size => 10 needs well over a second for them here (a
// tiny batch size no longer makes it slow: batches are merged at commit),
// so a cancel sent a quarter of a second in lands mid-call.
const bigRows = 400000

// cancelAfter is when the cancel step cancels its replicate().
const cancelAfter = 250 * time.Millisecond

// clientPassword is what the client tests' servers require.
const clientPassword = "client-Secret-42"

// A client scenario runs once per destination, as a subtest named after
// it: over DuckDB, where pgcdc answers as Postgres would, and over a
// Postgres destination, which pgcdc serves as a transparent proxy.
type clientDestination struct {
	name string
	// postgres says pgcdc proxies a Postgres destination: the settings,
	// version and errors a client sees are the destination's own.
	postgres bool
	// skip returns a reason to skip the variant, or "".
	skip func() string
}

var clientDestinations = []clientDestination{
	{name: "duckdb", skip: func() string { return "" }},
	{name: "postgres", postgres: true, skip: func() string { return "" }},
}

// forEachClientDestination runs a client scenario against every destination.
func forEachClientDestination(t *testing.T, run func(t *testing.T, d clientDestination)) {
	for _, d := range clientDestinations {
		t.Run(d.name, func(t *testing.T) {
			if why := d.skip(); why != "" {
				t.Skip(why)
			}
			run(t, d)
		})
	}
}

// clientSetup is a source database with clientSchema and a pgcdc server in
// front of a fresh replica, with a password and TLS.
type clientSetup struct {
	srv        *pgcdctest.Server
	src        *pgx.Conn
	srcURL     *url.URL
	slot, pub  string
	certFile   string
	clientName string
}

// startClientSetup starts the source, the destination d and the server;
// extra are more pgcdc flags.
func startClientSetup(ctx context.Context, t *testing.T, d clientDestination, name string, extra ...string) *clientSetup {
	t.Helper()
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, clientSchema)
	cert, key := testcert.Files(t)
	opts := pgcdctest.Options{
		Source:   dsn,
		Password: clientPassword,
		Extra:    append([]string{"--tls-cert", cert, "--tls-key", key}, extra...),
	}
	if d.postgres {
		// Slots are the source cluster's: apart from the DuckDB run's.
		name += "_pg"
		dest := startDestinationCluster(t)
		db := testDatabaseNameFor(t)
		if err := dest.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		opts.Destination = dest.DSN(db)
	}
	srv := pgcdctest.Start(t, opts)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return &clientSetup{srv: srv, src: src, srcURL: u, slot: name + "_slot", pub: name + "_pub", certFile: cert, clientName: name}
}

// env is what a scenario script reads: where pgcdc and the source are.
func (c *clientSetup) env() []string {
	pw, _ := c.srcURL.User.Password()
	return []string{
		"PGCDC_HOST=127.0.0.1",
		"PGCDC_PORT=" + strconv.Itoa(c.srv.Port),
		"PGCDC_USER=" + c.clientName + "_user",
		"PGCDC_PASSWORD=" + clientPassword,
		"PGCDC_DBNAME=pgcdc",
		"PGCDC_SLOT=" + c.slot,
		"PGCDC_PUB=" + c.pub,
		"SOURCE_HOST=" + c.srcURL.Hostname(),
		"SOURCE_PORT=" + c.srcURL.Port(),
		"SOURCE_USER=" + c.srcURL.User.Username(),
		"SOURCE_PASSWORD=" + pw,
		"SOURCE_DBNAME=" + strings.TrimPrefix(c.srcURL.Path, "/"),
		"BIG_ROWS=" + strconv.Itoa(bigRows),
		"CANCEL_AFTER_MS=" + strconv.Itoa(int(cancelAfter/time.Millisecond)),
	}
}

// verify compares the replica with the source through pgx, independently
// of what the script checked.
func (c *clientSetup) verify(ctx context.Context, t *testing.T) {
	t.Helper()
	rep := c.srv.Connect(ctx, t)
	sameRows(ctx, t, c.src, rep, srcOrders, repOrders)
	sameRows(ctx, t, c.src, rep, srcCustomers, repCustomers)
	sameRows(ctx, t, c.src, rep, "SELECT count(*), sum(v) FROM shop.big", "SELECT count(*), sum(v) FROM shop.big")
}

// waitSlotReleased waits until no walsender holds slot on the source. A
// cancelled replicate() returns as soon as it has rolled back; the source
// releases the slot a moment later, when the walsender of the closed
// replication connection exits, and a replicate() in that moment fails
// with 55006. The scenarios wait for that before their after_cancel step.
func waitSlotReleased(ctx context.Context, t *testing.T, src *pgx.Conn, slot string) {
	t.Helper()
	for {
		var active bool
		if err := src.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if !active {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("slot %s still active: %v", slot, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// requireClient reports a missing client library: a failure in CI, where
// .ci/install-clients must have installed it, and a skip elsewhere.
func requireClient(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI=%s: .ci/install-clients should have installed it)", msg, os.Getenv("CI"))
	}
	t.Skipf("%s; run .ci/install-clients", msg)
}

// clientsDir is internal/clients, where the scenario scripts live.
func clientsDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "internal", "clients")
}

// runScenario runs a client's scenario script and checks that it reported
// every step. It returns the script's output.
func runScenario(ctx context.Context, t *testing.T, c *clientSetup, cmd *exec.Cmd) string {
	t.Helper()
	// libpq and the drivers read PG* variables: keep the developer's own
	// settings out of the scenario.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, c.env()...), cmd.Env...)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%v):\n%s", strings.Join(cmd.Args, " "), time.Since(start).Round(time.Millisecond), out)
	if ctx.Err() != nil {
		t.Fatalf("scenario timed out: %v", ctx.Err())
	}
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	reported := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "ok" {
			reported[f[1]] = true
		}
	}
	for _, step := range clientSteps {
		if !reported[step] {
			t.Errorf("the scenario did not report step %q", step)
		}
	}
	if strings.Contains(c.srv.Logs(), clientPassword) {
		t.Error("the client password appears in pgcdc's log")
	}
	return string(out)
}
