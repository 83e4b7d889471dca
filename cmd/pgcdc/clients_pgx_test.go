package main_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestClientPgx runs the client scenario (see clients_common_test.go) with
// pgx, in every one of its query modes: named statements with binary
// results, described and plain extended queries, and the simple protocol.
func TestClientPgx(t *testing.T) { forEachClientDestination(t, clientPgx) }

func clientPgx(t *testing.T, d clientDestination) {
	ctx := testContext(t, 3*time.Minute)
	c := startClientSetup(ctx, t, d, "pgx")

	var mu sync.Mutex
	var notices []string
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=pgx_user dbname=pgcdc password=%s sslmode=require application_name=pgx-scenario connect_timeout=10",
		c.srv.Port, clientPassword))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message)
		mu.Unlock()
	}
	takeNotices := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := notices
		notices = nil
		return out
	}

	// tls: SCRAM over TLS.
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	defer conn.Close(context.Background())
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
	}
	if v := conn.PgConn().ParameterStatus("server_version"); !strings.Contains(v, ".") {
		t.Fatalf("server_version = %q", v)
	}

	// bad_password
	bad := cfg.Copy()
	bad.Password = "wrong"
	if _, err := pgx.ConnectConfig(ctx, bad); pgCode(err) != "28P01" {
		t.Fatalf("wrong password: %v, want 28P01", err)
	}

	// init: literals, simple protocol, progress NOTICEs.
	got := rowsOf(ctx, t, conn, fmt.Sprintf(`SELECT table_name, snapshot_rows FROM init_replication('%s', '%s',
		schema_name => 'shop', table_names => ARRAY['orders', 'customers', 'big'], persist_snapshots => true)`, c.slot, c.pub))
	if strings.Join(got, ";") != "shop.orders|3;shop.customers|3;shop.big|0" {
		t.Fatalf("init_replication = %v", got)
	}
	if n := takeNotices(); !slices.ContainsFunc(n, func(s string) bool { return strings.HasPrefix(s, "snapshot shop.orders: 3 rows copied") }) {
		t.Fatalf("no snapshot progress NOTICE, got %q", n)
	}

	// ParameterDescription reports the catalog's types for our functions.
	sd, err := conn.Prepare(ctx, "rep", "SELECT * FROM replicate($1, $2, target_batch_size => $3)")
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{pgtype.TextOID, pgtype.TextOID, pgtype.Int4OID}; !slices.Equal(sd.ParamOIDs, want) {
		t.Fatalf("ParameterDescription = %v, want %v", sd.ParamOIDs, want)
	}
	if len(sd.Fields) != 7 || sd.Fields[1].DataTypeOID != pgtype.Int8OID {
		t.Fatalf("RowDescription = %+v", sd.Fields)
	}

	// replicate and passthrough, once per query mode.
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for i, mode := range modes {
		mustExec(ctx, t, c.src, `INSERT INTO shop.orders (customer_id, amount, note) VALUES ($1, $2, $3)`, i, fmt.Sprintf("%d.25", i), mode.String())
		mustExec(ctx, t, c.src, `UPDATE shop.customers SET email = $1 WHERE id = 2`, mode.String())
		rows, err := conn.Query(ctx, "SELECT table_name, inserts, updates FROM replicate($1, $2, target_batch_size => $3)", mode, c.slot, c.pub, 7)
		if err != nil {
			t.Fatalf("%v: replicate: %v", mode, err)
		}
		res := map[string][2]int64{}
		for rows.Next() {
			var name string
			var ins, upd int64
			if err := rows.Scan(&name, &ins, &upd); err != nil {
				t.Fatalf("%v: %v", mode, err)
			}
			res[name] = [2]int64{ins, upd}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%v: replicate: %v", mode, err)
		}
		if res["shop.orders"] != [2]int64{1, 0} || res["shop.customers"] != [2]int64{0, 1} {
			t.Fatalf("%v: replicate = %v", mode, res)
		}
		// Passthrough with a parameter, and typed results in this mode.
		var n int64
		var total pgtype.Numeric
		var last time.Time
		if err := conn.QueryRow(ctx, "SELECT count(*), sum(amount), max(placed_at) FROM shop.orders WHERE customer_id >= $1", mode, 0).Scan(&n, &total, &last); err != nil {
			t.Fatalf("%v: passthrough: %v", mode, err)
		}
		var wantN int64
		var wantTotal pgtype.Numeric
		if err := c.src.QueryRow(ctx, "SELECT count(*), sum(amount) FROM shop.orders").Scan(&wantN, &wantTotal); err != nil {
			t.Fatal(err)
		}
		if n != wantN || norm(total) != norm(wantTotal) || last.IsZero() {
			t.Fatalf("%v: replica has %d rows totalling %s, source %d totalling %s", mode, n, norm(total), wantN, norm(wantTotal))
		}
		sameRows(ctx, t, c.src, conn, srcOrders, repOrders)
	}
	// The simple protocol with several statements in one message, and a
	// comment in front: each statement answers for itself.
	batch := conn.PgConn().Exec(ctx, "/* pgx */ SELECT count(*) FROM shop.customers; SELECT 'two'; ")
	results, err := batch.ReadAll()
	if err != nil || len(results) != 2 || string(results[0].Rows[0][0]) != "3" || string(results[1].Rows[0][0]) != "two" {
		t.Fatalf("multi-statement query: %v %+v", err, results)
	}

	// Postgres session commands that clients send and DuckDB lacks.
	mustExec(ctx, t, conn, "SET application_name = 'renamed'")
	if v := conn.PgConn().ParameterStatus("application_name"); v != "renamed" {
		t.Fatalf("ParameterStatus application_name after SET = %q", v)
	}
	for _, q := range []string{"SET extra_float_digits = 3", "SET DateStyle TO 'ISO'", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET client_encoding TO 'UTF8'", "SET statement_timeout = 0", "RESET extra_float_digits"} {
		mustExec(ctx, t, conn, q)
	}
	wantSettings := map[string]string{
		"SHOW server_version_num":          "160000",
		"SHOW DateStyle":                   "ISO, MDY",
		"SHOW application_name":            "renamed",
		"show TRANSACTION ISOLATION LEVEL": "read committed",
		"SHOW extra_float_digits":          "1",
	}
	if d.postgres {
		// The destination's own answers.
		delete(wantSettings, "SHOW server_version_num")
	} else {
		// DuckDB's snapshot isolation, whatever the client asked for
		// (docs/compatibility.md).
		wantSettings["show TRANSACTION ISOLATION LEVEL"] = "repeatable read"
	}
	for q, want := range wantSettings {
		if got := rowsOf(ctx, t, conn, q); len(got) != 1 || got[0] != want {
			t.Fatalf("%s = %v, want %s", q, got, want)
		}
	}
	if d.postgres {
		var direct string
		if err := c.srv.Connect(ctx, t).QueryRow(ctx, "SHOW server_version").Scan(&direct); err != nil || direct != conn.PgConn().ParameterStatus("server_version") {
			t.Fatalf("SHOW server_version %q, ParameterStatus %q: %v", direct, conn.PgConn().ParameterStatus("server_version"), err)
		}
		mustExec(ctx, t, conn, "SET DateStyle = 'German'") // the destination follows any DateStyle
		mustExec(ctx, t, conn, "SET search_path = 'shop,public'")
		if _, err := conn.Exec(ctx, "SET threads = 2"); pgCode(err) != "42704" {
			t.Fatalf("SET threads = 2: %v, want the destination's 42704", err)
		}
	} else {
		if got := rowsOf(ctx, t, conn, "select version()"); len(got) != 1 || !strings.HasPrefix(got[0], "PostgreSQL 16.0") {
			t.Fatalf("version() = %v", got)
		}
		if _, err := conn.Exec(ctx, "SET DateStyle = 'German'"); pgCode(err) != "0A000" {
			t.Fatalf("SET DateStyle = 'German': %v, want 0A000", err)
		}
		mustExec(ctx, t, conn, "SET search_path = 'shop,public,main'") // a DuckDB session setting passes through
		if _, err := conn.Exec(ctx, "SET threads = 2"); pgCode(err) != "42501" {
			t.Fatalf("SET threads = 2: %v, want 42501 (DuckDB's global settings are locked)", err)
		}
	}
	mustExec(ctx, t, conn, "RESET ALL")
	if v := conn.PgConn().ParameterStatus("application_name"); v != "pgx-scenario" {
		t.Fatalf("ParameterStatus application_name after RESET ALL = %q", v)
	}

	// error: an unknown argument, then the same connection works.
	_, err = conn.Exec(ctx, fmt.Sprintf("SELECT * FROM replicate('%s', '%s', bogus => 1)", c.slot, c.pub))
	if pgCode(err) != "42883" {
		t.Fatalf("unknown argument: %v, want 42883", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}

	// transaction: our functions inside a block do their work; a failure
	// aborts the block until ROLLBACK.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, c.src, `INSERT INTO shop.customers VALUES (10, 'in tx', NULL)`)
	if _, err := tx.Exec(ctx, "SELECT * FROM replicate($1, $2)", c.slot, c.pub); err != nil {
		t.Fatalf("replicate inside a transaction: %v", err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("status after replicate in a block = %c, want T", st)
	}
	var name string
	if err := tx.QueryRow(ctx, "SELECT name FROM shop.customers WHERE id = 10").Scan(&name); err != nil || name != "in tx" {
		t.Fatalf("the replica read inside the block after replicate(): %q, %v", name, err)
	}
	_, err = tx.Exec(ctx, "SELECT * FROM replicate($1, $2, nope => true)", c.slot, c.pub)
	if pgCode(err) != "42883" {
		t.Fatalf("failing call in a block: %v", err)
	}
	if st := conn.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("status after a failed call in a block = %c, want E", st)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); pgCode(err) != "25P02" {
		t.Fatalf("statement in an aborted block: %v, want 25P02", err)
	}
	if _, err := tx.Exec(ctx, "SELECT * FROM replicate($1, $2)", c.slot, c.pub); pgCode(err) != "25P02" {
		t.Fatalf("call in an aborted block: %v, want 25P02", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'I' {
		t.Fatalf("status after ROLLBACK = %c", st)
	}

	// cancel: a long replicate(), cancelled with pgx's CancelRequest.
	mustExec(ctx, t, c.src, fmt.Sprintf("INSERT INTO shop.big SELECT g, g FROM generate_series(1, %d) g", bigRows))
	takeNotices()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT * FROM replicate($1, $2, target_batch_size => $3)", c.slot, c.pub, 10)
		done <- err
	}()
	time.Sleep(cancelAfter)
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	t.Logf("cancelled after %v", time.Since(start))
	if pgCode(err) != "57014" {
		t.Fatalf("cancelled replicate: %v, want 57014", err)
	}
	t.Logf("notices during the cancelled call: %q", takeNotices())

	// after_cancel: at once, the slot must already be free
	start = time.Now()
	res := callReplicate(ctx, t, conn, "SELECT * FROM replicate($1, $2)", c.slot, c.pub)
	t.Logf("replicate after cancel took %v: %+v", time.Since(start), res)
	if r := res["shop.big"]; r.inserts != bigRows {
		t.Fatalf("replicate after cancel = %+v, want %d inserts", r, bigRows)
	}
	c.verify(ctx, t)
	if err := conn.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
