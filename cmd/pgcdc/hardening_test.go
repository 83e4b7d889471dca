package main_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// These scenarios pin down how pgcdc refuses, instead of silently skipping
// or duplicating changes, when what it finds does not match what it
// recorded: another source, renamed or dropped tables, objects it did not
// create, and a damaged state (options that differ from the slot's, and
// renamed tables: testdata/conformance).

// sourceObjects lists the source's slots and publications, for checks that
// a refused call created or dropped nothing.
func sourceObjects(ctx context.Context, t *testing.T, src *pgx.Conn) string {
	t.Helper()
	var s string
	if err := src.QueryRow(ctx, `SELECT
		COALESCE((SELECT string_agg(slot_name || ':' || COALESCE(confirmed_flush_lsn::text, restart_lsn::text, ''), ',' ORDER BY slot_name)
			FROM pg_replication_slots WHERE database = current_database() OR database IS NULL), '') || ' | ' ||
		COALESCE((SELECT string_agg(p.pubname || '(' || COALESCE((SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1)
			FROM pg_publication_tables pt WHERE pt.pubname = p.pubname), '') || ')', ',' ORDER BY p.pubname) FROM pg_publication p), '')`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// newSourceIsRefused: a replica pointed at another server must not apply
// the first source's position to the second one.
func newSourceIsRefused(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	srcA, r := setup(ctx, t, d, shopSchema)
	rep := r.pgcdc
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('ns_s1', 'ns_p1', schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true)`)
	mustExec(ctx, t, srcA, `INSERT INTO shop.orders (customer_id, amount) SELECT 1, g FROM generate_series(1, 2000) g`)
	mustExec(ctx, t, rep, `SELECT * FROM replicate('ns_s1', 'ns_p1')`)
	rep.Close(ctx)
	r.srv.Kill()

	// Another cluster with the same schema, behind its WAL: far fewer changes.
	other, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Stop() })
	if err := other.CreateDatabase(ctx, "shop_b"); err != nil {
		t.Fatal(err)
	}
	dsnB := other.DSN("shop_b")
	srcB, err := pgx.Connect(ctx, dsnB)
	if err != nil {
		t.Fatal(err)
	}
	defer srcB.Close(context.Background())
	mustExec(ctx, t, srcB, shopSchema)

	rB := r.withSource(ctx, t, dsnB)
	repB := rB.pgcdc
	before := sourceObjects(ctx, t, srcB)
	pe := expectError(ctx, t, repB, "55000", `SELECT * FROM init_replication('ns_s1', 'ns_p1', schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true)`)
	if !strings.Contains(pe.Message, "system identifier") || !strings.Contains(pe.Hint, "reset => true") {
		t.Fatalf("error does not say why and what to do: %s / %s", pe.Message, pe.Hint)
	}
	if after := sourceObjects(ctx, t, srcB); after != before {
		t.Fatalf("a refused init_replication changed the source: %q -> %q", before, after)
	}

	// A slot of the same name on the new source is not consumed either.
	mustExec(ctx, t, srcB, `CREATE PUBLICATION ns_p1 FOR TABLE shop.orders`)
	mustExec(ctx, t, srcB, `SELECT pg_create_logical_replication_slot('ns_s1', 'pgoutput')`)
	mustExec(ctx, t, srcB, `INSERT INTO shop.orders (customer_id, amount) VALUES (9, 9)`)
	before = sourceObjects(ctx, t, srcB)
	pe = expectError(ctx, t, repB, "55000", `SELECT * FROM replicate('ns_s1', 'ns_p1')`)
	if !strings.Contains(pe.Message, "not the one slot") {
		t.Fatalf("replicate on a new source: %s", pe.Message)
	}
	if after := sourceObjects(ctx, t, srcB); after != before {
		t.Fatalf("a refused replicate changed the source: %q -> %q", before, after)
	}
	// The way out is explicit: reset (and adopt, since the slot and the
	// publication on the new source are not pgcdc's).
	mustExec(ctx, t, srcB, `SELECT pg_drop_replication_slot('ns_s1')`)
	mustExec(ctx, t, srcB, `DROP PUBLICATION ns_p1`)
	mustExec(ctx, t, repB, `SELECT * FROM init_replication('ns_s1', 'ns_p1', schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true, reset => true)`)
	mustExec(ctx, t, srcB, `UPDATE shop.orders SET note = 'b' WHERE id = 1; INSERT INTO shop.customers VALUES (4, 'Barbara', NULL)`)
	mustExec(ctx, t, repB, `SELECT * FROM replicate('ns_s1', 'ns_p1')`)
	sameRows(ctx, t, srcB, rB.data, srcOrders, repOrders)
	sameRows(ctx, t, srcB, rB.data, srcCustomers, repCustomers)
}

// tableNamesWithDots: names holding a dot or chr(1) stay two parts, so
// dropping one slot's tables cannot reach another slot's.
func tableNamesWithDots(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	_, r := setup(ctx, t, d, `CREATE SCHEMA shop; CREATE SCHEMA "shop.x";
		CREATE TABLE shop."x.y" (id int PRIMARY KEY); INSERT INTO shop."x.y" VALUES (1), (2);
		CREATE TABLE "shop.x".y (id int PRIMARY KEY); INSERT INTO "shop.x".y VALUES (3);
		CREATE TABLE "shop.x"."z`+"\x01"+`w" (id int PRIMARY KEY); INSERT INTO "shop.x"."z`+"\x01"+`w" VALUES (4)`)
	rep := r.pgcdc
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('dots_s1', 'dots_p1', schema_name => 'shop', table_names => ARRAY['x.y'], persist_snapshots => true)`)
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('dots_s2', 'dots_p2', schema_name => 'shop.x', persist_snapshots => true)`)
	var dropped []string
	if err := rep.QueryRow(ctx, `SELECT dropped_tables FROM drop_replication('dots_s2', 'dots_p2', drop_tables => true)`).Scan(&dropped); err != nil {
		t.Fatal(err)
	}
	slices.Sort(dropped)
	want := []string{`"shop.x".y`, `"shop.x"."z` + "\x01" + `w"`}
	slices.Sort(want)
	if !slices.Equal(dropped, want) {
		t.Fatalf("dropped_tables = %q, want %q", dropped, want)
	}
	if got := rowsOf(ctx, t, r.data, `SELECT id FROM shop."x.y" ORDER BY id`); strings.Join(got, ",") != "1,2" {
		t.Fatalf("slot s1's table after dropping s2's: %v", got)
	}
	if left := r.tables(ctx, t, "shop.x"); len(left) != 0 {
		t.Fatalf("s2's tables left: %q", left)
	}
	var tables []string
	if err := rep.QueryRow(ctx, `SELECT tables FROM replication_status('dots_s1')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tables, []string{`shop."x.y"`}) {
		t.Fatalf("replication_status tables = %q", tables)
	}
}

// droppedReplicaTableIsDetected: a replica table a client dropped is not
// silently recreated with only the new rows; the error says how to copy it
// again, and that works.
func droppedReplicaTableIsDetected(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, shopSchema)
	rep := r.pgcdc
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('drop_s1', 'drop_p1', schema_name => 'shop', table_names => ARRAY['orders','customers'], persist_snapshots => true)`)
	mustExec(ctx, t, r.data, `DROP TABLE shop.orders`)
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (4, 4); INSERT INTO shop.customers VALUES (4, 'Dana', NULL)`)
	lsn := confirmedLSN(ctx, t, src, "drop_s1")
	pe := expectError(ctx, t, rep, "55000", `SELECT * FROM replicate('drop_s1', 'drop_p1')`)
	if !strings.Contains(pe.Message, "shop.orders") || !strings.Contains(pe.Hint, "init_replication(") {
		t.Fatalf("error: %s / hint: %s", pe.Message, pe.Hint)
	}
	if got := confirmedLSN(ctx, t, src, "drop_s1"); got != lsn {
		t.Fatalf("the refused call moved the slot from %s to %s", lsn, got)
	}
	// Without a snapshot the table cannot come back.
	expectError(ctx, t, rep, "55000", `SELECT * FROM init_replication('drop_s1', 'drop_p1', schema_name => 'shop', table_names => ARRAY['orders'])`)
	// The hint's command copies it again.
	mustExec(ctx, t, rep, "SELECT * FROM "+pe.Hint[strings.Index(pe.Hint, "init_replication("):strings.Index(pe.Hint, ", then")])
	mustExec(ctx, t, rep, `SELECT * FROM replicate('drop_s1', 'drop_p1')`)
	sameRows(ctx, t, src, r.data, srcOrders, repOrders)
	sameRows(ctx, t, src, r.data, srcCustomers, repCustomers)
}

// failedInitLeavesNothing: bad datasets are refused before anything is
// created, and a failure after creation takes back what the call created.
func failedInitLeavesNothing(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	reserved := pgx.Identifier{d.reservedSourceSchema}.Sanitize()
	src, r := setup(ctx, t, d, shopSchema+`CREATE SCHEMA `+reserved+`; CREATE TABLE `+reserved+`.t (id int PRIMARY KEY)`)
	rep := r.pgcdc
	refusal := d.refusedTable(ctx, t, src, r)
	empty := sourceObjects(ctx, t, src)
	for _, ds := range d.reservedDatasets {
		pe := expectError(ctx, t, rep, "42602", `SELECT * FROM init_replication('fail_s1', 'fail_p1', schema_name => 'shop', table_names => ARRAY['orders'], persist_snapshots => true, dataset_name => $1)`, ds)
		if !strings.Contains(pe.Message, "cannot hold replicated tables") {
			t.Fatalf("dataset %q: %s", ds, pe.Message)
		}
	}
	// A source schema whose name the destination reserves needs a dataset.
	expectError(ctx, t, rep, "42602", `SELECT * FROM init_replication('fail_s1', 'fail_p1', schema_name => $1, persist_snapshots => true)`, d.reservedSourceSchema)
	if got := sourceObjects(ctx, t, src); got != empty {
		t.Fatalf("refused calls left %q", got)
	}
	// Fails in the snapshot, after the slot and the publication exist.
	_, err := rep.Exec(ctx, `SELECT * FROM init_replication('fail_s1', 'fail_p1', schema_name => 'shop', table_names => ARRAY['orders', 'bad'], persist_snapshots => true)`)
	if err == nil || !strings.Contains(err.Error(), refusal) {
		t.Fatalf("snapshot of a table the destination refuses: %v, want an error naming %s", err, refusal)
	}
	if got := sourceObjects(ctx, t, src); got != empty {
		t.Fatalf("failed init_replication left %q", got)
	}
	var states int
	if err := r.data.QueryRow(ctx, `SELECT count(*) FROM _pgcdc.slots`).Scan(&states); err != nil || states != 0 {
		t.Fatalf("failed init_replication left %d states (%v)", states, err)
	}
	// Adding a table to an existing slot that fails takes back only the
	// addition.
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('fail_s1', 'fail_p1', schema_name => 'shop', table_names => ARRAY['orders'], persist_snapshots => true)`)
	with := sourceObjects(ctx, t, src)
	if _, err := rep.Exec(ctx, `SELECT * FROM init_replication('fail_s1', 'fail_p1', schema_name => 'shop', table_names => ARRAY['bad'], persist_snapshots => true)`); err == nil {
		t.Fatal("a snapshot the destination refuses succeeded")
	}
	if got := sourceObjects(ctx, t, src); got != with {
		t.Fatalf("failed addition changed the source: %q -> %q", with, got)
	}
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (3, 3)`)
	mustExec(ctx, t, rep, `SELECT * FROM replicate('fail_s1', 'fail_p1')`)
	sameRows(ctx, t, src, r.data, srcOrders, repOrders)
}

// damagedStateIsRefused edits the state as the destination stores it, as
// a client could before clients were kept out of pgcdc's schema, and checks
// that replicate() refuses it instead of skipping changes or confirming the
// slot where the source has no WAL.
func damagedStateIsRefused(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, shopSchema)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('dmg_s1', 'dmg_p1', schema_name => 'shop', table_names => ARRAY['orders'], persist_snapshots => true)`)
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (4, 4)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM replicate('dmg_s1', 'dmg_p1')`)
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (5, 5)`)

	lsn := confirmedLSN(ctx, t, src, "dmg_s1")
	cases := []struct{ name, sql, code, msg string }{
		{"lsn past the source's WAL", `UPDATE _pgcdc.slots SET lsn = ` + d.lsnLiteral(1<<62), "55000", "beyond the source's WAL end"},
		{"lsn behind the slot", `UPDATE _pgcdc.slots SET lsn = slot_lsn - 1, slot_lsn = ` + d.lsnLiteral(0), "55000", "confirmed up to"},
		{"lsn before the slot's start", `UPDATE _pgcdc.slots SET slot_lsn = lsn + 1`, "55000", "starting point"},
		{"state row deleted", `DELETE FROM _pgcdc.slots`, "42501", "not set up by pgcdc"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			d.editState(ctx, t, r, `DROP TABLE IF EXISTS _pgcdc.saved; CREATE TABLE _pgcdc.saved AS SELECT * FROM _pgcdc.slots; `+c.sql)
			pe := expectError(ctx, t, r.pgcdc, c.code, `SELECT * FROM replicate('dmg_s1', 'dmg_p1')`)
			if !strings.Contains(pe.Message, c.msg) {
				t.Fatalf("error %q does not say %q", pe.Message, c.msg)
			}
			if got := confirmedLSN(ctx, t, src, "dmg_s1"); got != lsn {
				t.Fatalf("refused call moved the slot from %s to %s", lsn, got)
			}
			d.editState(ctx, t, r, `DELETE FROM _pgcdc.slots; INSERT INTO _pgcdc.slots SELECT * FROM _pgcdc.saved; DROP TABLE _pgcdc.saved`)
		})
	}
	// Sessions a subtest opened end with it.
	r.connect(ctx, t)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM replicate('dmg_s1', 'dmg_p1')`)
	sameRows(ctx, t, src, r.data, srcOrders, repOrders)
}

func sqlOpenDuckDB(path string) (*sql.DB, error) { return sql.Open("duckdb", path) }

// onlyWhatPgcdcCreated: slots and publications pgcdc did not create are
// never dropped, consumed or altered, unless adopt => true says so; nor is a
// destination table.
func onlyWhatPgcdcCreated(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	otherDB := strings.TrimPrefix(t.Name(), "Test") + "_other"
	otherDB = strings.ToLower(otherDB)
	if err := source.CreateDatabase(ctx, otherDB); err != nil {
		t.Fatal(err)
	}
	if err := source.Exec(ctx, otherDB, `SELECT pg_create_logical_replication_slot('only_otherdb', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		source.Exec(context.Background(), "postgres", `SELECT pg_drop_replication_slot('only_otherdb')`)
	})
	for _, q := range []string{`SELECT pg_create_physical_replication_slot('only_phys')`,
		`SELECT pg_create_logical_replication_slot('only_td', 'test_decoding')`,
		`CREATE PUBLICATION native_pub FOR TABLE shop.customers`,
		`SELECT pg_create_logical_replication_slot('only_native', 'pgoutput')`,
		`CREATE PUBLICATION other_pub FOR TABLE shop.customers`} {
		mustExec(ctx, t, src, q)
	}
	t.Cleanup(func() {
		source.Exec(context.Background(), "postgres", `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('only_phys', 'only_td', 'only_native')`)
	})
	// Flushed, so that decoding (which stops at the flush position) sees it.
	mustExec(ctx, t, src, `SET synchronous_commit = on; INSERT INTO shop.customers VALUES (10, 'pending', NULL)`)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	rep := r.pgcdc
	before := sourceObjects(ctx, t, src)
	expectError(ctx, t, rep, "42501", `SELECT * FROM drop_replication('only_phys', 'x')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM drop_replication('only_td', 'x')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM drop_replication('only_native', 'native_pub')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM drop_replication('only_otherdb', 'x')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM drop_replication('nope', 'other_pub')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM replicate('only_native', 'native_pub')`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM init_replication('owc_s1', 'other_pub', schema_name => 'shop', table_names => ARRAY['orders'])`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM init_replication('only_native', 'native_pub', schema_name => 'shop', table_names => ARRAY['customers'])`)
	expectError(ctx, t, rep, "42501", `SELECT * FROM init_replication('only_native', 'native_pub', schema_name => 'shop', table_names => ARRAY['customers'], reset => true)`)
	if after := sourceObjects(ctx, t, src); after != before {
		t.Fatalf("refused calls changed the source:\nbefore %s\nafter  %s", before, after)
	}
	var otherdb int
	if err := src.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'only_otherdb'`).Scan(&otherdb); err != nil || otherdb != 1 {
		t.Fatalf("the other database's slot: %d (%v)", otherdb, err)
	}
	var pending int
	if err := src.QueryRow(ctx, `SELECT count(*) FROM pg_logical_slot_peek_binary_changes('only_native', NULL, NULL, 'proto_version', '1', 'publication_names', 'native_pub')`).Scan(&pending); err != nil || pending == 0 {
		t.Fatalf("native slot's pending changes: %d (%v)", pending, err)
	}
	// A destination table pgcdc did not create is not written either.
	mustExec(ctx, t, r.data, `CREATE SCHEMA shop; CREATE TABLE shop.customers (mine int)`)
	expectError(ctx, t, rep, "42P07", `SELECT * FROM init_replication('owc_s1', 'owc_p1', schema_name => 'shop', table_names => ARRAY['customers'], persist_snapshots => true)`)
	mustExec(ctx, t, r.data, `DROP TABLE shop.customers`)

	// adopt => true takes the native slot and its publication over on
	// purpose: the snapshot is merged, the pending change applied.
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('only_native', 'native_pub', schema_name => 'shop', table_names => ARRAY['customers'], persist_snapshots => true, adopt => true)`)
	mustExec(ctx, t, src, `UPDATE shop.customers SET name = 'adopted' WHERE id = 10`)
	mustExec(ctx, t, rep, `SELECT * FROM replicate('only_native', 'native_pub')`)
	sameRows(ctx, t, src, r.data, srcCustomers, repCustomers)
	mustExec(ctx, t, rep, `SELECT * FROM drop_replication('only_native', 'native_pub')`)
	var left int
	if err := src.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'only_native') + (SELECT count(*) FROM pg_publication WHERE pubname = 'native_pub')`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("adopted slot and publication left: %d (%v)", left, err)
	}
}
