package main_test

import (
	"strings"
	"testing"
	"time"
)

// bigText is an incompressible value far over the TOAST threshold, so
// Postgres stores it out of line and pgoutput leaves it out of updates
// that do not touch it.
const bigText = `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 400) g)`

// statusAndDrop: replication_status reports a slot before and after
// replicate, and drop_replication removes the slot, the publication and,
// when asked, the replica tables.
func statusAndDrop(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, `CREATE TABLE s (id int PRIMARY KEY); INSERT INTO s VALUES (1)`)
	rep := r.pgcdc
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('st', 'st_pub', table_names => 's', persist_snapshots => true)")
	mustExec(ctx, t, src, "INSERT INTO s VALUES (2)")
	var lag int64
	var pub, walStatus string
	var active bool
	var last *time.Time
	var tables []string
	if err := rep.QueryRow(ctx, `SELECT publication, active, lag_bytes, wal_status, last_replicated_at, tables
		FROM replication_status('st')`).Scan(&pub, &active, &lag, &walStatus, &last, &tables); err != nil {
		t.Fatal(err)
	}
	if pub != "st_pub" || active || lag <= 0 || walStatus != "reserved" || last != nil || strings.Join(tables, ",") != "public.s" {
		t.Fatalf("status before replicate: pub=%s active=%v lag=%d wal=%s last=%v tables=%v", pub, active, lag, walStatus, last, tables)
	}
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('st', 'st_pub')")
	if err := rep.QueryRow(ctx, `SELECT last_replicated_at FROM replication_status('st')`).Scan(&last); err != nil || last == nil {
		t.Fatalf("last_replicated_at after replicate: %v %v", last, err)
	}
	expectError(ctx, t, rep, "42704", "SELECT * FROM replication_status('nope')")
	var dropped []string
	if err := rep.QueryRow(ctx, "SELECT dropped_tables FROM drop_replication('st', 'st_pub', drop_tables => true)").Scan(&dropped); err != nil {
		t.Fatal(err)
	}
	if strings.Join(dropped, ",") != "public.s" {
		t.Fatalf("dropped = %v", dropped)
	}
	var slots, pubs int
	if err := src.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'st'),
		(SELECT count(*) FROM pg_publication WHERE pubname = 'st_pub')`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if left := r.tables(ctx, t, "public"); slots+pubs+len(left) != 0 {
		t.Fatalf("after drop: %d slots, %d publications, tables %v", slots, pubs, left)
	}
	expectError(ctx, t, rep, "42704", "SELECT * FROM drop_replication('st', 'st_pub')")
}

// reset: reset => true drops and recreates the slot and the publication
// and takes a new snapshot, so a replica that drifted is rebuilt.
func reset(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, `CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r VALUES (1, 'a'), (2, 'b')`)
	var first string
	if err := r.pgcdc.QueryRow(ctx, "SELECT consistent_lsn FROM init_replication('rs', 'rs_pub', table_names => 'r', persist_snapshots => true)").Scan(&first); err != nil {
		t.Fatal(err)
	}
	// The replica drifts: a client writes to it, and the source moves on.
	mustExec(ctx, t, r.data, "DELETE FROM r WHERE id = 1")
	mustExec(ctx, t, src, "INSERT INTO r VALUES (3, 'c')")
	var second string
	var rows int64
	if err := r.pgcdc.QueryRow(ctx, `SELECT consistent_lsn, snapshot_rows FROM init_replication('rs', 'rs_pub', table_names => 'r',
		persist_snapshots => true, reset => true)`).Scan(&second, &rows); err != nil {
		t.Fatal(err)
	}
	if second == first || rows != 3 {
		t.Fatalf("reset kept the slot (consistent_lsn %s -> %s) or copied %d rows", first, second, rows)
	}
	sameRows(ctx, t, src, r.data, "SELECT id, v FROM r ORDER BY id", "SELECT id, v FROM r ORDER BY id")
	mustExec(ctx, t, src, "UPDATE r SET v = 'z' WHERE id = 2")
	callReplicate(ctx, t, r.pgcdc, "SELECT * FROM replicate('rs', 'rs_pub')")
	sameRows(ctx, t, src, r.data, "SELECT id, v FROM r ORDER BY id", "SELECT id, v FROM r ORDER BY id")
}
