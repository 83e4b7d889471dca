package main_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// psql runs one psql -c command against srv and returns its output.
func psql(ctx context.Context, t *testing.T, srv *pgcdctest.Server, sql string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed (.ci/run installs postgresql-client): ", err)
	}
	cmd := exec.CommandContext(ctx, path, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strings.TrimPrefix(srv.Addr[strings.LastIndex(srv.Addr, ":"):], ":"), "-U", "analyst", "-d", "pgcdc", "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
	if srv.Password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+srv.Password)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out) + stderr.String()), err
	}
	if s := stderr.String(); s != "" {
		t.Logf("psql: %s", s)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestPsqlSession follows the README: psql against pgcdc with a password,
// init_replication, changes on the source, replicate, and a query of the
// replica, all through psql.
func TestPsqlSession(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn, Password: "s3cret-for-psql"})

	out, err := psql(ctx, t, srv, `/* {"app": "dbt", "node_id": "x"} */ SELECT table_name, snapshot_rows FROM pgcdc.init_replication('ps', 'ps_pub', schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true);`)
	if err != nil {
		t.Fatalf("psql init_replication: %v\n%s", err, out)
	}
	if out != "shop.orders|3\nshop.customers|3" {
		t.Fatalf("init_replication through psql:\n%s", out)
	}
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (7, 1.25);
		UPDATE shop.orders SET note = 'psql' WHERE id = 1; DELETE FROM shop.orders WHERE id = 2`)
	out, err = psql(ctx, t, srv, `SELECT Replicate('ps', 'ps_pub')`)
	if err != nil {
		t.Fatalf("psql replicate: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "(shop.orders,1,1,1,0,") {
		t.Fatalf("SELECT replicate() through psql: %q", out)
	}
	out, err = psql(ctx, t, srv, `SELECT id, note FROM shop.orders ORDER BY id`)
	if err != nil {
		t.Fatalf("psql query: %v\n%s", err, out)
	}
	if out != "1|psql\n3|tab\tand 'quote'\n4|" {
		t.Fatalf("replica through psql:\n%q", out)
	}
	// A wrong password is refused with 28P01.
	bad := *srv
	bad.Password = "not-it"
	out, err = psql(ctx, t, &bad, `SELECT 1`)
	if err == nil || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("wrong password: err=%v out=%s", err, out)
	}
	if strings.Contains(srv.Logs(), "not-it") || strings.Contains(srv.Logs(), "s3cret-for-psql") {
		t.Fatal("a password appears in pgcdc's log")
	}
	// Errors reach psql with their SQLSTATE and message.
	out, err = psql(ctx, t, srv, `SELECT * FROM replicate('ps', 'ps_pub', nope => 1)`)
	if err == nil || !strings.Contains(out, "ERROR:") || !strings.Contains(out, "nope") {
		t.Fatalf("error through psql: err=%v out=%s", err, out)
	}
}
