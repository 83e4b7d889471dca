package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const shopSchema = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE shop.orders (
	id bigserial PRIMARY KEY,
	customer_id int NOT NULL,
	amount numeric(12,2),
	note text,
	placed_at timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05.123456+00');
INSERT INTO shop.customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', NULL), (3, 'Linus', 'l@example.com');
INSERT INTO shop.orders (customer_id, amount, note) VALUES (1, 10.50, 'first'), (2, 99.99, NULL), (1, 0.01, 'tab	and ''quote''');
`

const (
	srcOrders    = `SELECT id, customer_id, amount::text, note, placed_at FROM shop.orders ORDER BY id`
	repOrders    = `SELECT id, customer_id, CAST(amount AS VARCHAR), note, placed_at FROM shop.orders ORDER BY id`
	srcCustomers = `SELECT id, name, email FROM shop.customers ORDER BY id`
	repCustomers = `SELECT id, name, email FROM shop.customers ORDER BY id`
)

type replicateRow struct {
	table                                string
	inserts, updates, deletes, truncates int64
	start, end                           string
}

func callReplicate(ctx context.Context, t *testing.T, rep *pgx.Conn, sql string, args ...any) map[string]replicateRow {
	t.Helper()
	rows, err := rep.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out := map[string]replicateRow{}
	for rows.Next() {
		var r replicateRow
		if err := rows.Scan(&r.table, &r.inserts, &r.updates, &r.deletes, &r.truncates, &r.start, &r.end); err != nil {
			t.Fatal(err)
		}
		out[r.table] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func currentLSN(ctx context.Context, t *testing.T, src *pgx.Conn) string {
	var lsn string
	if err := src.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// lsnAtLeast asks the source to compare two LSNs, so the test does not
// re-implement LSN parsing.
func lsnAtLeast(ctx context.Context, t *testing.T, src *pgx.Conn, a, b string) bool {
	var ok bool
	if err := src.QueryRow(ctx, "SELECT $1::pg_lsn >= $2::pg_lsn", a, b).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func confirmedLSN(ctx context.Context, t *testing.T, src *pgx.Conn, slot string) string {
	var lsn string
	if err := src.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// endToEnd: a snapshot, then inserts, updates, deletes, key changes and
// many small transactions through small batches; every row carries its
// change's LSN; an idle call still releases WAL; flush_slot => false
// leaves the slot where it was and the next call applies nothing twice;
// init_replication again adds a table.
func endToEnd(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	src, r := setup(ctx, t, d, shopSchema)
	rep, data := r.pgcdc, r.data

	// init_replication with a snapshot.
	rows, err := rep.Query(ctx, `SELECT table_name, snapshot_rows, consistent_lsn FROM init_replication('s1', 'p1',
		schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true)`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var consistent string
	for rows.Next() {
		var name string
		var n *int64
		if err := rows.Scan(&name, &n, &consistent); err != nil {
			t.Fatal(err)
		}
		if n == nil {
			t.Fatalf("%s: snapshot_rows is NULL after a snapshot", name)
		}
		got[name] = *n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got["shop.orders"] != 3 || got["shop.customers"] != 3 || len(got) != 2 {
		t.Fatalf("init_replication rows = %v, want 3 orders and 3 customers", got)
	}
	if !strings.Contains(consistent, "/") {
		t.Fatalf("consistent_lsn = %q", consistent)
	}
	// The publication was created empty WITH (publish = ...) and filled.
	var pubTables int
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'p1'").Scan(&pubTables); err != nil {
		t.Fatal(err)
	}
	if pubTables != 2 {
		t.Fatalf("publication has %d tables, want 2", pubTables)
	}
	sameRows(ctx, t, src, data, srcOrders, repOrders)
	sameRows(ctx, t, src, data, srcCustomers, repCustomers)

	// Inserts, updates, deletes.
	mustExec(ctx, t, src, `
		INSERT INTO shop.orders (customer_id, amount, note) VALUES (3, 5.00, 'new'), (3, 6.00, 'newer');
		UPDATE shop.orders SET amount = 11.00, note = 'changed' WHERE id = 1;
		DELETE FROM shop.orders WHERE id = 2;
		UPDATE shop.customers SET email = 'grace@example.com' WHERE id = 2;
		DELETE FROM shop.customers WHERE id = 3;
		INSERT INTO shop.customers VALUES (4, 'Barbara', NULL);`)
	res := callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1')`)
	if r := res["shop.orders"]; r.inserts != 2 || r.updates != 1 || r.deletes != 1 {
		t.Fatalf("replicate orders = %+v, want 2 inserts, 1 update, 1 delete", r)
	}
	if r := res["shop.customers"]; r.inserts != 1 || r.updates != 1 || r.deletes != 1 {
		t.Fatalf("replicate customers = %+v", r)
	}
	sameRows(ctx, t, src, data, srcOrders, repOrders)
	sameRows(ctx, t, src, data, srcCustomers, repCustomers)

	// Several transactions, a row changed many times, a key change, and a
	// row inserted and deleted between two calls.
	mustExec(ctx, t, src, `
		UPDATE shop.orders SET note = 'v1' WHERE id = 3;
		UPDATE shop.orders SET note = 'v2' WHERE id = 3;
		UPDATE shop.orders SET note = 'v3', amount = NULL WHERE id = 3;
		INSERT INTO shop.orders (id, customer_id) VALUES (100, 1);
		DELETE FROM shop.orders WHERE id = 100;
		UPDATE shop.customers SET id = 40 WHERE id = 4;`)
	for i := 0; i < 20; i++ {
		mustExec(ctx, t, src, "INSERT INTO shop.orders (customer_id, amount) VALUES ($1, $2)", i, i)
	}
	res = callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1', target_batch_size => 7)`)
	if r := res["shop.orders"]; r.inserts != 21 || r.updates != 3 || r.deletes != 1 {
		t.Fatalf("replicate orders = %+v, want 21 inserts, 3 updates, 1 delete", r)
	}
	sameRows(ctx, t, src, data, srcOrders, repOrders)
	sameRows(ctx, t, src, data, srcCustomers, repCustomers)

	// Every replicated row carries the LSN of its change.
	var zeroLSN int
	if err := data.QueryRow(ctx, `SELECT count(*) FROM shop.orders WHERE _pg_lsn IS NULL OR _pg_lsn <= 0`).Scan(&zeroLSN); err != nil {
		t.Fatal(err)
	}
	if zeroLSN != 0 {
		t.Fatalf("%d rows without _pg_lsn", zeroLSN)
	}
	var deletedTS int
	if err := data.QueryRow(ctx, `SELECT count(*) FROM shop.orders WHERE _pg_deleted_ts IS NOT NULL`).Scan(&deletedTS); err != nil {
		t.Fatalf("_pg_deleted_ts column: %v", err)
	}
	if deletedTS != 0 {
		t.Fatalf("%d rows marked deleted under hard deletes", deletedTS)
	}

	// An idle call returns nothing and still moves the slot to the end, so
	// WAL is released. Other tables keep the WAL moving meanwhile.
	mustExec(ctx, t, src, "CREATE TABLE public.busy (x int); INSERT INTO public.busy SELECT generate_series(1, 1000)")
	before := currentLSN(ctx, t, src)
	start := time.Now()
	res = callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1')`)
	if len(res) != 0 {
		t.Fatalf("idle replicate returned %v", res)
	}
	if confirmed := confirmedLSN(ctx, t, src, "s1"); !lsnAtLeast(ctx, t, src, confirmed, before) {
		t.Fatalf("idle replicate left the slot at %s, before the end %s", confirmed, before)
	}
	t.Logf("idle replicate took %v", time.Since(start))

	// flush_slot => false applies the changes but leaves the slot where it was.
	mustExec(ctx, t, src, "INSERT INTO shop.customers VALUES (5, 'Edsger', NULL)")
	slotBefore := confirmedLSN(ctx, t, src, "s1")
	res = callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1', flush_slot => false)`)
	if res["shop.customers"].inserts != 1 {
		t.Fatalf("replicate(flush_slot => false) = %v", res)
	}
	if after := confirmedLSN(ctx, t, src, "s1"); after != slotBefore {
		t.Fatalf("flush_slot => false moved the slot from %s to %s", slotBefore, after)
	}
	sameRows(ctx, t, src, data, srcCustomers, repCustomers)
	// The next call sees the same change again and, because the destination
	// stored its LSN, does not apply it twice.
	res = callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1')`)
	if len(res) != 0 {
		t.Fatalf("replicate after flush_slot => false re-applied %v", res)
	}
	sameRows(ctx, t, src, data, srcCustomers, repCustomers)

	// Re-running init_replication adds a table to the publication.
	mustExec(ctx, t, src, "CREATE TABLE shop.items (sku text PRIMARY KEY, qty int); INSERT INTO shop.items VALUES ('a', 1), ('b', 2)")
	var name string
	var n int64
	if err := rep.QueryRow(ctx, `SELECT table_name, snapshot_rows FROM init_replication('s1', 'p1', schema_name => 'shop',
		table_names => 'items', persist_snapshots => true)`).Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	if name != "shop.items" || n != 2 {
		t.Fatalf("adding a table: got %s %d", name, n)
	}
	mustExec(ctx, t, src, "UPDATE shop.items SET qty = 3 WHERE sku = 'a'; INSERT INTO shop.items VALUES ('c', 9)")
	callReplicate(ctx, t, rep, `SELECT * FROM replicate('s1', 'p1')`)
	sameRows(ctx, t, src, data, "SELECT sku, qty FROM shop.items ORDER BY sku", "SELECT sku, qty FROM shop.items ORDER BY sku")
}
