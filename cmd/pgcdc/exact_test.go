package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// bigText is an incompressible value far over the TOAST threshold, so
// Postgres stores it out of line and pgoutput leaves it out of updates
// that do not touch it.
const bigText = `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 400) g)`

func replicaSetup(ctx context.Context, t *testing.T, schema string) (*pgx.Conn, *pgx.Conn) {
	t.Helper()
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, schema)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	return src, srv.Connect(ctx, t)
}

func TestUnchangedToast(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
		INSERT INTO docs SELECT g, 't' || g, `+bigText+` FROM generate_series(1, 4) g`)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('toast', 'toast_pub', table_names => 'docs', persist_snapshots => true)")
	const srcQ = "SELECT id, title, md5(body), length(body) FROM docs ORDER BY id"
	const repQ = "SELECT id, title, md5(body), length(body) FROM docs ORDER BY id"
	// 1: the row is only in the destination. 2: updated twice in one batch.
	// 3: key changes with the TOAST value untouched. 5: inserted and then
	// updated in the same batch. 4: untouched.
	mustExec(ctx, t, src, `UPDATE docs SET title = 'one' WHERE id = 1;
		UPDATE docs SET title = 'two' WHERE id = 2; UPDATE docs SET title = 'two again' WHERE id = 2;
		UPDATE docs SET id = 30, title = 'moved' WHERE id = 3;
		INSERT INTO docs VALUES (5, 'five', `+bigText+`); UPDATE docs SET title = 'five!' WHERE id = 5`)
	// Confirm the premise: the values live in the TOAST table, so updates
	// that leave them alone do not send them.
	var toastRows int
	var toastName string
	if err := src.QueryRow(ctx, "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'docs'").Scan(&toastName); err != nil {
		t.Fatal(err)
	}
	if err := src.QueryRow(ctx, "SELECT count(*) FROM "+toastName).Scan(&toastRows); err != nil || toastRows == 0 {
		t.Fatalf("body is not stored out of line (%d TOAST rows, %v); the test would prove nothing", toastRows, err)
	}
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('toast', 'toast_pub')")
	sameRows(ctx, t, src, rep, srcQ, repQ)
	// Again across two calls and small batches.
	mustExec(ctx, t, src, "UPDATE docs SET title = 'x' || title")
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('toast', 'toast_pub', target_batch_size => 2)")
	sameRows(ctx, t, src, rep, srcQ, repQ)
}

func TestKeys(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `
		CREATE TABLE full_pk (id int PRIMARY KEY, v text, j jsonb);
		ALTER TABLE full_pk REPLICA IDENTITY FULL;
		CREATE TABLE by_index (a int NOT NULL, b text NOT NULL, v text);
		CREATE UNIQUE INDEX by_index_ab ON by_index (a, b);
		ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_ab;
		CREATE TABLE full_nokey (a int, b text);
		ALTER TABLE full_nokey REPLICA IDENTITY FULL;
		CREATE TABLE composite (k1 int, k2 text, v int, PRIMARY KEY (k1, k2));
		INSERT INTO full_pk VALUES (1, 'a', '{"x": 1}'), (2, 'b', NULL);
		INSERT INTO by_index VALUES (1, 'x', 'one'), (2, 'y', 'two');
		INSERT INTO full_nokey VALUES (1, 'p'), (1, 'p'), (1, 'p'), (3, 'r'), (2, NULL);
		INSERT INTO composite VALUES (1, 'a', 1), (1, 'b', 2);`)
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('keys', 'keys_pub',
		table_names => ARRAY['full_pk', 'by_index', 'full_nokey', 'composite'], persist_snapshots => true)`)
	mustExec(ctx, t, src, `
		UPDATE full_pk SET v = 'a2', j = '{"x": 2}' WHERE id = 1; UPDATE full_pk SET id = 20 WHERE id = 2; DELETE FROM full_pk WHERE id = 20;
		INSERT INTO full_pk VALUES (3, 'c', '[]');
		UPDATE by_index SET v = 'uno' WHERE a = 1; UPDATE by_index SET b = 'z' WHERE a = 2; DELETE FROM by_index WHERE a = 1;
		UPDATE full_nokey SET b = 'q' WHERE a = 2; DELETE FROM full_nokey WHERE ctid = (SELECT min(ctid) FROM full_nokey WHERE a = 1);
		DELETE FROM full_nokey WHERE a = 3; INSERT INTO full_nokey VALUES (4, 's'), (4, 's');
		UPDATE full_nokey SET b = 'pp' WHERE ctid = (SELECT max(ctid) FROM full_nokey WHERE a = 1);
		UPDATE composite SET k2 = 'c' WHERE k2 = 'b'; UPDATE composite SET v = 10 WHERE k2 = 'a';`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('keys', 'keys_pub')")
	sameRows(ctx, t, src, rep, "SELECT id, v, j::text FROM full_pk ORDER BY id", "SELECT id, v, CAST(j AS VARCHAR) FROM full_pk ORDER BY id")
	sameRows(ctx, t, src, rep, "SELECT a, b, v FROM by_index ORDER BY a", "SELECT a, b, v FROM by_index ORDER BY a")
	sameRows(ctx, t, src, rep, "SELECT a, b FROM full_nokey ORDER BY a, b", "SELECT a, b FROM full_nokey ORDER BY a, b")
	sameRows(ctx, t, src, rep, "SELECT k1, k2, v FROM composite ORDER BY k1, k2", "SELECT k1, k2, v FROM composite ORDER BY k1, k2")
}

func TestNoKeyTable(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x'), (1, 'x')`)
	pe := expectError(ctx, t, rep, "55000", "SELECT * FROM init_replication('nk', 'nk_pub', table_names => 'nokey')")
	if !strings.Contains(pe.Message, "no primary key") || pe.Hint == "" {
		t.Fatalf("error = %+v", pe)
	}
	// Insert-only publications append, duplicates and all.
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('nk', 'nk_pub', table_names => 'nokey', publish => 'insert', persist_snapshots => true)")
	mustExec(ctx, t, src, "INSERT INTO nokey VALUES (1, 'x'), (2, NULL)")
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('nk', 'nk_pub')")
	sameRows(ctx, t, src, rep, "SELECT a, b FROM nokey ORDER BY a, b", "SELECT a, b FROM nokey ORDER BY a, b")
}

func TestTruncate(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `
		CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent);
		CREATE TABLE other (id int PRIMARY KEY);
		INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 1); INSERT INTO other VALUES (7)`)
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('tr', 'tr_pub', table_names => ARRAY['parent', 'child', 'other'],
		publish => 'insert, update, delete, truncate', persist_snapshots => true)`)
	mustExec(ctx, t, src, `INSERT INTO other VALUES (8); TRUNCATE other; INSERT INTO other VALUES (9);
		INSERT INTO parent VALUES (3); TRUNCATE parent CASCADE; INSERT INTO parent VALUES (4)`)
	res := callReplicate(ctx, t, rep, "SELECT * FROM replicate('tr', 'tr_pub')")
	if res["public.other"].truncates != 1 || res["public.child"].truncates != 1 {
		t.Fatalf("truncates = %+v", res)
	}
	for _, tbl := range []string{"parent", "child", "other"} {
		sameRows(ctx, t, src, rep, "SELECT id FROM "+tbl+" ORDER BY id", "SELECT id FROM "+tbl+" ORDER BY id")
	}
	mustExec(ctx, t, src, "TRUNCATE parent, child, other")
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('tr', 'tr_pub')")
	for _, tbl := range []string{"parent", "child", "other"} {
		sameRows(ctx, t, src, rep, "SELECT id FROM "+tbl+" ORDER BY id", "SELECT id FROM "+tbl+" ORDER BY id")
	}
}

func TestPartitionedTable(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `
		CREATE TABLE measures (id int, at date, v numeric(8,2), PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE measures_2026 PARTITION OF measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		INSERT INTO measures VALUES (1, '2025-05-01', 1.5), (2, '2026-05-01', 2.5)`)
	rows := rowsOf(ctx, t, rep, "SELECT table_name, snapshot_rows FROM init_replication('pt', 'pt_pub', persist_snapshots => true)")
	if strings.Join(rows, ";") != "public.measures|2" {
		t.Fatalf("whole-schema init over a partitioned table = %v (partitions must not appear on their own)", rows)
	}
	mustExec(ctx, t, src, `INSERT INTO measures VALUES (3, '2026-07-01', 3.5);
		UPDATE measures SET v = 9 WHERE id = 1; UPDATE measures SET at = '2026-02-01' WHERE id = 1; DELETE FROM measures WHERE id = 2`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('pt', 'pt_pub')")
	sameRows(ctx, t, src, rep, `SELECT id, "at", v::text FROM measures ORDER BY id`, `SELECT id, "at", CAST(v AS VARCHAR) FROM measures ORDER BY id`)
	var n int
	if err := rep.QueryRow(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'measures_%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("partitions landed as their own tables (%d, %v)", n, err)
	}
}

func TestSoftDeleteAndColumnSelection(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `
		CREATE TABLE a (id int PRIMARY KEY, keep text, secret text, score numeric);
		CREATE TABLE b (id int PRIMARY KEY, score numeric, secret text);
		INSERT INTO a VALUES (1, 'k1', 's1', 1.25), (2, 'k2', 's2', 2.5);
		INSERT INTO b VALUES (1, 3.75, 'bs')`)
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('sd', 'sd_pub', table_names => ARRAY['a', 'b'], persist_snapshots => true,
		include_columns => '{"a": ["keep", "score"]}', columns => '{"a": {"score": {"data_type": "double"}}}')`)
	check := func() {
		t.Helper()
		var cols string
		if err := rep.QueryRow(ctx, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index)
			FROM duckdb_columns() WHERE table_name = 'a'`).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if cols != "id INTEGER, keep VARCHAR, score DOUBLE, _pg_lsn BIGINT, _pg_deleted_ts TIMESTAMP WITH TIME ZONE" {
			t.Fatalf("a's columns: %s", cols)
		}
		// The hint for a.score does not leak into b.score.
		if err := rep.QueryRow(ctx, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index)
			FROM duckdb_columns() WHERE table_name = 'b'`).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cols, "id INTEGER, score VARCHAR, secret VARCHAR") {
			t.Fatalf("b's columns: %s", cols)
		}
	}
	check()
	mustExec(ctx, t, src, "INSERT INTO a VALUES (3, 'k3', 's3', 0.5); DELETE FROM a WHERE id = 1; UPDATE b SET score = 4 WHERE id = 1")
	var commit time.Time
	if err := src.QueryRow(ctx, "SELECT now()").Scan(&commit); err != nil {
		t.Fatal(err)
	}
	callReplicate(ctx, t, rep, `SELECT * FROM replicate('sd', 'sd_pub', delete_mode => 'soft',
		include_columns => '{"a": ["keep", "score"]}', columns => '{"a": {"score": {"data_type": "double"}}}')`)
	check()
	got := rowsOf(ctx, t, rep, "SELECT id, keep, score, _pg_deleted_ts IS NOT NULL FROM a ORDER BY id")
	if strings.Join(got, ";") != "1|k1|1.25|true;2|k2|2.5|false;3|k3|0.5|false" {
		t.Fatalf("soft-deleted a = %v", got)
	}
	var ts time.Time
	if err := rep.QueryRow(ctx, "SELECT _pg_deleted_ts FROM a WHERE id = 1").Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if d := ts.Sub(commit); d < -time.Minute || d > time.Minute {
		t.Fatalf("_pg_deleted_ts = %v, want the commit time near %v", ts, commit)
	}
	sameRows(ctx, t, src, rep, "SELECT id, score::text, secret FROM b", "SELECT id, score, secret FROM b")
}

func TestMessagesOriginAndTypes(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TYPE color AS ENUM ('red', 'green'); CREATE TABLE m (id int PRIMARY KEY, c color)`)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('msg', 'msg_pub', table_names => 'm')")
	mustExec(ctx, t, src, `BEGIN; SELECT pg_logical_emit_message(true, 'app', 'in a transaction'); INSERT INTO m VALUES (1, 'red'); COMMIT;
		SELECT pg_logical_emit_message(false, 'app', 'outside');
		SELECT pg_replication_origin_create('elsewhere');`)
	// A change that arrived from another node carries an Origin message.
	conn, err := pgx.Connect(ctx, src.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	mustExec(ctx, t, conn, "SELECT pg_replication_origin_session_setup('elsewhere')")
	mustExec(ctx, t, conn, "BEGIN; SELECT pg_replication_origin_xact_setup('0/1234', now()); INSERT INTO m VALUES (2, 'green'); COMMIT")
	res := callReplicate(ctx, t, rep, "SELECT * FROM replicate('msg', 'msg_pub')")
	if res["public.m"].inserts != 2 {
		t.Fatalf("replicate = %+v", res)
	}
	sameRows(ctx, t, src, rep, "SELECT id, c::text FROM m ORDER BY id", "SELECT id, c FROM m ORDER BY id")
}

func TestStatusAndDrop(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE s (id int PRIMARY KEY); INSERT INTO s VALUES (1)`)
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
	var slots, pubs, tablesLeft int
	if err := src.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'st'),
		(SELECT count(*) FROM pg_publication WHERE pubname = 'st_pub')`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if err := rep.QueryRow(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 's'").Scan(&tablesLeft); err != nil {
		t.Fatal(err)
	}
	if slots+pubs+tablesLeft != 0 {
		t.Fatalf("after drop: %d slots, %d publications, %d tables", slots, pubs, tablesLeft)
	}
	expectError(ctx, t, rep, "42704", "SELECT * FROM drop_replication('st', 'st_pub')")
}

// TestReset: reset => true drops and recreates the slot and the publication
// and takes a new snapshot, so a replica that drifted is rebuilt.
func TestReset(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r VALUES (1, 'a'), (2, 'b')`)
	var first string
	if err := rep.QueryRow(ctx, "SELECT consistent_lsn FROM init_replication('rs', 'rs_pub', table_names => 'r', persist_snapshots => true)").Scan(&first); err != nil {
		t.Fatal(err)
	}
	// The replica drifts: a client writes to it, and the source moves on.
	mustExec(ctx, t, rep, "DELETE FROM r WHERE id = 1")
	mustExec(ctx, t, src, "INSERT INTO r VALUES (3, 'c')")
	var second string
	var rows int64
	if err := rep.QueryRow(ctx, `SELECT consistent_lsn, snapshot_rows FROM init_replication('rs', 'rs_pub', table_names => 'r',
		persist_snapshots => true, reset => true)`).Scan(&second, &rows); err != nil {
		t.Fatal(err)
	}
	if second == first || rows != 3 {
		t.Fatalf("reset kept the slot (consistent_lsn %s -> %s) or copied %d rows", first, second, rows)
	}
	sameRows(ctx, t, src, rep, "SELECT id, v FROM r ORDER BY id", "SELECT id, v FROM r ORDER BY id")
	mustExec(ctx, t, src, "UPDATE r SET v = 'z' WHERE id = 2")
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('rs', 'rs_pub')")
	sameRows(ctx, t, src, rep, "SELECT id, v FROM r ORDER BY id", "SELECT id, v FROM r ORDER BY id")
}

// TestIdentityIndexOverPrimaryKey: with REPLICA IDENTITY USING INDEX a
// delete sends only the index's columns, so they, not the primary key,
// are what rows are matched on.
func TestIdentityIndexOverPrimaryKey(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	src, rep := replicaSetup(ctx, t, `
		CREATE TABLE acct (id int PRIMARY KEY, code text NOT NULL, v text);
		CREATE UNIQUE INDEX acct_code ON acct (code);
		ALTER TABLE acct REPLICA IDENTITY USING INDEX acct_code;
		INSERT INTO acct VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three');`)
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('ri', 'ri_pub', table_names => 'acct', persist_snapshots => true)`)
	mustExec(ctx, t, src, `DELETE FROM acct WHERE id = 1; UPDATE acct SET code = 'bb' WHERE id = 2; UPDATE acct SET v = 'III' WHERE id = 3`)
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('ri', 'ri_pub')")
	sameRows(ctx, t, src, rep, "SELECT id, code, v FROM acct ORDER BY id", "SELECT id, code, v FROM acct ORDER BY id")
}

// TestFullRowSoftDeletes: on a keyless REPLICA IDENTITY FULL table, soft
// deletes mark rows and updates still replace them, in one batch or many.
func TestFullRowSoftDeletes(t *testing.T) {
	for _, batch := range []int{1000, 1} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			ctx := testContext(t, 2*time.Minute)
			src, rep := replicaSetup(ctx, t, `CREATE TABLE fr (v int); ALTER TABLE fr REPLICA IDENTITY FULL;
				INSERT INTO fr VALUES (1), (3), (3)`)
			slot := fmt.Sprintf("fr%d", batch)
			mustExec(ctx, t, rep, fmt.Sprintf("SELECT * FROM init_replication('%s', 'fr_pub', table_names => 'fr', persist_snapshots => true)", slot))
			mustExec(ctx, t, src, `UPDATE fr SET v = 2 WHERE v = 1; DELETE FROM fr WHERE ctid = (SELECT min(ctid) FROM fr WHERE v = 3);
				INSERT INTO fr VALUES (4); DELETE FROM fr WHERE v = 4`)
			callReplicate(ctx, t, rep, fmt.Sprintf("SELECT * FROM replicate('%s', 'fr_pub', delete_mode => 'soft', target_batch_size => %d)", slot, batch))
			got := strings.Join(rowsOf(ctx, t, rep, "SELECT v, _pg_deleted_ts IS NOT NULL FROM fr ORDER BY v, 2"), ";")
			if want := "2|false;3|false;3|true;4|true"; got != want {
				t.Fatalf("replica = %s, want %s", got, want)
			}
		})
	}
}

// TestAddTableWithoutKeyToExistingSlot: a snapshot into an existing slot
// cannot meet its stream exactly, which only merges forgive.
func TestAddTableWithoutKeyToExistingSlot(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	_, rep := replicaSetup(ctx, t, `CREATE TABLE a (id int); CREATE TABLE b (id int); INSERT INTO b VALUES (1)`)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('ak', 'ak_pub', table_names => 'a', publish => 'insert', persist_snapshots => true)")
	pe := expectError(ctx, t, rep, "0A000", "SELECT * FROM init_replication('ak', 'ak_pub', table_names => 'b', publish => 'insert', persist_snapshots => true)")
	if pe.Hint == "" {
		t.Fatalf("no hint: %+v", pe)
	}
	// Without a snapshot the table is simply added.
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('ak', 'ak_pub', table_names => 'b', publish => 'insert')")
}
