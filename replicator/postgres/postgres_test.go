package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/postgres"
)

// The engine runs in-process here, between a throwaway source cluster and a
// throwaway destination cluster, so that the destination's own behaviour is
// tested without the server around it; cmd/pgcdc runs the same guarantees
// end to end.
var source, destination *pgtest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	source, err = pgtest.Start(ctx, pgtest.Options{})
	if err == nil {
		destination, err = pgtest.Start(ctx, pgtest.Options{})
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start throwaway Postgres clusters:", err)
		if source != nil {
			source.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	source.Stop()
	destination.Stop()
	os.Exit(code)
}

var dbSeq atomic.Int64

// env is one test's source database, destination database and engine.
type env struct {
	t    *testing.T
	ctx  context.Context
	src  *pgx.Conn
	dst  *pgx.Conn
	repl *replicator.Replicator
}

func newEnv(t *testing.T, schema string) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	name := fmt.Sprintf("pgdest_%d", dbSeq.Add(1))
	if err := source.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := destination.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx}
	var err error
	if e.src, err = pgx.Connect(ctx, source.DSN(name)); err != nil {
		t.Fatal(err)
	}
	if e.dst, err = pgx.Connect(ctx, destination.DSN(name)); err != nil {
		t.Fatal(err)
	}
	dest, err := postgres.Open(ctx, destination.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.src.Close(context.Background())
		e.dst.Close(context.Background())
		dest.Close()
		// Slots outlive databases; drop this test's so that names can repeat.
		source.Exec(context.Background(), "postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", name)
	})
	e.repl = replicator.New(source.DSN(name), dest, zerolog.Nop())
	e.exec(e.src, schema)
	return e
}

func (e *env) exec(conn *pgx.Conn, sql string) {
	e.t.Helper()
	if _, err := conn.Exec(e.ctx, sql); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) init(o replicator.InitOptions) {
	e.t.Helper()
	if o.Publication == "" {
		o.Publication = o.Slot + "_pub"
	}
	if _, err := e.repl.Init(e.ctx, o); err != nil {
		e.t.Fatalf("init_replication: %v", err)
	}
}

func (e *env) replicate(slot string, batch int) []replicator.TableStats {
	e.t.Helper()
	st, err := e.repl.Replicate(e.ctx, replicator.ReplicateOptions{Slot: slot, Publication: slot + "_pub", BatchSize: batch, FlushSlot: true})
	if err != nil {
		e.t.Fatalf("replicate: %v", err)
	}
	return st
}

// rows renders a query's rows as text, by the server's own output.
func (e *env) rows(conn *pgx.Conn, q string) string {
	e.t.Helper()
	rows, err := conn.Query(e.ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var parts []string
		for _, v := range rows.RawValues() {
			if v == nil {
				parts = append(parts, "NULL")
			} else {
				parts = append(parts, string(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return strings.Join(out, "\n")
}

// same compares a query's result on source and destination.
func (e *env) same(q string) {
	e.t.Helper()
	want, got := e.rows(e.src, q), e.rows(e.dst, q)
	if want != got {
		e.t.Fatalf("%s\nsource:\n%s\ndestination:\n%s", q, want, got)
	}
}

// sameTable compares a table's source columns on both sides, leaving out
// the destination's metadata columns.
func (e *env) sameTable(table, order string) {
	e.t.Helper()
	cols := e.rows(e.src, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = '`+table+`'::regclass AND attnum > 0 AND NOT attisdropped`)
	e.same("SELECT " + cols + " FROM " + table + " ORDER BY " + order)
}

// columnTypes lists a table's columns with format_type's types.
func columnTypes(table string) string {
	return `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = '` + table + `'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\_pg\_%' ORDER BY attnum`
}

func TestExactTypes(t *testing.T) {
	e := newEnv(t, `
		CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE DOMAIN positive AS numeric(10,2) CHECK (VALUE > 0);
		CREATE TYPE pair AS (a int, b text);
		CREATE TYPE floatrange AS RANGE (subtype = float8);
		CREATE TABLE t (
			id int PRIMARY KEY, b bool, i2 int2, i8 int8, f4 float4, f8 float8,
			n numeric(12,2), nu numeric, nbig numeric(60,20), t text, vc varchar(10), c char(3), nm name,
			by bytea, d date, ti time(3), tz timetz, ts timestamp(2), tstz timestamptz, iv interval,
			u uuid, j json, jb jsonb, inet inet, cidr cidr, mac macaddr, bits bit(4), vb varbit,
			money money, x xml, tsv tsvector, ir int4range, tr tstzrange, fr floatrange,
			m mood, ms mood[], dom positive, p pair, ia int[], ta2 text[][], pt point, bx box[]);
		INSERT INTO t VALUES (1, true, -32768, 9223372036854775807, 1.5, 'NaN', 12.34, 'Infinity',
			'1234567890123456789012345678901234567890.12345678901234567890', 'tab	"q"', 'abc', 'ab', 'name',
			'\x00ff', '0044-03-15 BC', '24:00:00', '10:00:00+02', '2024-01-02 03:04:05.129', '2024-01-02 03:04:05.123456+00',
			'-1 year 2 mons -3 days 04:05:06.7', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": 2}', '{"b": 1, "a": [2]}',
			'10.0.0.1/8', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'10110', '12.34', '<a>x</a>', 'fat cat',
			'[1,10)', '[2024-01-01,2024-02-01)', '[1.5,2.5]', 'happy', '{sad,happy}', 3.5, ROW(1, 'x y'),
			'{1,NULL,3}', '{{a,b},{"c d",NULL}}', '(1,2)', '{(1,1),(0,0);(2,2),(1,1)}');
		INSERT INTO t (id) VALUES (2);
		-- Built-in types only: the snapshot takes the binary COPY path.
		CREATE TABLE b AS SELECT id, b, i2, i8, f4, f8, n, nu, nbig, t, vc, c, nm, by, d, ti, tz, ts, tstz, iv, u, j, jb, inet, cidr, mac,
			bits, vb, money, x, tsv, ir, tr, ia, ta2, pt, bx FROM t;
		ALTER TABLE b ADD PRIMARY KEY (id);`)
	e.init(replicator.InitOptions{Slot: "types", Schema: "public", Tables: []string{"t", "b"}, PersistSnapshots: true})
	e.sameTable("b", "id")
	e.exec(e.src, `INSERT INTO t SELECT id + 10, b, i2, i8, f4, f8, n, nu, nbig, t, vc, c, nm, by, d, ti, tz, ts, tstz, iv, u, j, jb, inet, cidr, mac,
		bits, vb, money, x, tsv, ir, tr, fr, m, ms, dom, p, ia, ta2, pt, bx FROM t;
		UPDATE t SET m = 'ok', n = -1.5 WHERE id = 11`)
	e.replicate("types", 1000)
	e.same(columnTypes("t"))
	e.sameTable("t", "id")
	// The enum, domain, composite and range types exist in the destination.
	e.same(`SELECT typname, typtype FROM pg_type WHERE typname IN ('mood', 'positive', 'pair', 'floatrange') ORDER BY 1`)
	// A label added at the source reaches the destination's enum.
	e.exec(e.src, `ALTER TYPE mood ADD VALUE 'ecstatic'`)
	e.exec(e.src, `INSERT INTO t (id, m) VALUES (20, 'ecstatic')`)
	e.replicate("types", 1000)
	e.same(`SELECT id, m FROM t ORDER BY id`)
}

func TestKeysToastAndDeletes(t *testing.T) {
	e := newEnv(t, `
		CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
		INSERT INTO docs SELECT g, 't' || g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i) FROM generate_series(1, 4) g;
		CREATE TABLE comp (a int, b text, v int, PRIMARY KEY (a, b));
		CREATE TABLE full_nokey (x int, y text);
		ALTER TABLE full_nokey REPLICA IDENTITY FULL;
		INSERT INTO full_nokey VALUES (1, 'a'), (1, 'a'), (1, 'a'), (2, NULL);
		CREATE TABLE ident (id int PRIMARY KEY, code text NOT NULL, v int);
		CREATE UNIQUE INDEX ident_code ON ident (code);
		ALTER TABLE ident REPLICA IDENTITY USING INDEX ident_code;
		INSERT INTO ident VALUES (1, 'one', 1), (2, 'two', 2);`)
	e.init(replicator.InitOptions{Slot: "keys", Schema: "public", Tables: []string{"docs", "comp", "full_nokey", "ident"}, PersistSnapshots: true})
	e.exec(e.src, `UPDATE docs SET title = 'one' WHERE id = 1;
		UPDATE docs SET title = 'two' WHERE id = 2; UPDATE docs SET title = 'two again' WHERE id = 2;
		UPDATE docs SET id = 30, title = 'moved' WHERE id = 3;
		INSERT INTO comp VALUES (1, 'x', 1), (1, 'y', 2); UPDATE comp SET b = 'z' WHERE b = 'x'; DELETE FROM comp WHERE b = 'y';
		DELETE FROM full_nokey WHERE ctid = (SELECT ctid FROM full_nokey WHERE x = 1 LIMIT 1);
		UPDATE full_nokey SET y = 'b' WHERE ctid = (SELECT ctid FROM full_nokey WHERE x = 1 LIMIT 1);
		INSERT INTO full_nokey VALUES (2, NULL);
		UPDATE ident SET code = 'uno' WHERE id = 1; DELETE FROM ident WHERE code = 'two'`)
	for _, batch := range []int{1000, 2} {
		e.replicate("keys", batch)
		e.same(`SELECT id, title, md5(body) FROM docs ORDER BY id`)
		e.sameTable("comp", "a, b")
		e.same(`SELECT x, y, count(*) FROM full_nokey GROUP BY x, y ORDER BY x, y`)
		e.sameTable("ident", "id")
		e.exec(e.src, `UPDATE docs SET title = title || '!'; DELETE FROM docs WHERE id = 4; INSERT INTO full_nokey VALUES (3, 'c')`)
	}
	// The merged tables have their key, the keyless one none.
	if got := e.rows(e.dst, `SELECT conrelid::regclass, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text`); got !=
		"comp|PRIMARY KEY (a, b)\ndocs|PRIMARY KEY (id)\nident|PRIMARY KEY (code)" {
		t.Fatalf("primary keys:\n%s", got)
	}
}

func TestSchemaChangesAndRenames(t *testing.T) {
	e := newEnv(t, `CREATE TABLE sc (id int PRIMARY KEY, a int, b text);
		INSERT INTO sc VALUES (1, 10, 'one'), (2, 20, 'two')`)
	e.init(replicator.InitOptions{Slot: "sc", Schema: "public", Tables: []string{"sc"}, PersistSnapshots: true})
	e.exec(e.src, `INSERT INTO sc VALUES (3, 30, 'three');
		ALTER TABLE sc ADD COLUMN c int;
		INSERT INTO sc VALUES (4, 40, 'four', 4);
		ALTER TABLE sc ADD COLUMN d int NOT NULL DEFAULT 5;
		UPDATE sc SET a = a + 1 WHERE id = 2`)
	e.replicate("sc", 1000)
	e.sameTable("sc", "id")
	// Renames in a call of their own: the stream learns attnums from the
	// catalog as it is now, so a rename after an ADD COLUMN in the same
	// call is a known limit (docs/semantics.md).
	e.exec(e.src, `ALTER TABLE sc RENAME COLUMN b TO bb;
		ALTER TABLE sc RENAME COLUMN a TO b;
		ALTER TABLE sc ALTER COLUMN c TYPE text USING 'v' || c;
		ALTER TABLE sc ADD COLUMN r float8 DEFAULT random();
		UPDATE sc SET b = b + 1 WHERE id = 1`)
	e.replicate("sc", 1000)
	e.same(columnTypes("sc"))
	e.sameTable("sc", "id")
	e.exec(e.src, `ALTER TABLE sc RENAME TO sc2; INSERT INTO sc2 (id) VALUES (5);
		CREATE SCHEMA other; ALTER TABLE sc2 SET SCHEMA other; UPDATE other.sc2 SET bb = 'moved' WHERE id = 2;
		ALTER TABLE other.sc2 DROP COLUMN c; UPDATE other.sc2 SET d = 6 WHERE id = 1`)
	e.replicate("sc", 1000)
	e.same(columnTypes("other.sc2"))
	e.sameTable("other.sc2", "id")
	if got := e.rows(e.dst, `SELECT count(*) FROM pg_class WHERE relname IN ('sc', 'sc2') AND relkind = 'r'`); got != "1" {
		t.Fatalf("tables named sc or sc2 in the destination: %s", got)
	}
}

func TestTruncateSoftDeleteAndAppend(t *testing.T) {
	e := newEnv(t, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'x'), (2, 'y');
		CREATE TABLE log (msg text); INSERT INTO log VALUES ('first')`)
	e.init(replicator.InitOptions{Slot: "tr", Schema: "public", Tables: []string{"a"}, PersistSnapshots: true})
	e.init(replicator.InitOptions{Slot: "ap", Schema: "public", Tables: []string{"log"}, Publish: "insert", PersistSnapshots: true})
	e.exec(e.src, `INSERT INTO a VALUES (3, 'z'); TRUNCATE a; INSERT INTO a VALUES (4, 'w'), (5, 'v');
		INSERT INTO log VALUES ('second'), ('second')`)
	e.replicate("tr", 1000)
	e.replicate("ap", 1000)
	e.sameTable("a", "id")
	e.same(`SELECT msg, count(*) FROM log GROUP BY msg ORDER BY msg`)
	e.exec(e.src, `DELETE FROM a WHERE id = 4`)
	st, err := e.repl.Replicate(e.ctx, replicator.ReplicateOptions{Slot: "tr", Publication: "tr_pub", BatchSize: 1000, FlushSlot: true, SoftDelete: true})
	if err != nil || len(st) != 1 || st[0].Deletes != 1 {
		t.Fatalf("soft delete: %+v %v", st, err)
	}
	if got := e.rows(e.dst, `SELECT id, v, _pg_deleted_ts IS NOT NULL FROM a ORDER BY id`); got != "4|w|t\n5|v|f" {
		t.Fatalf("after a soft delete:\n%s", got)
	}
}

// TestHistoryTable: a history replica's primary key is the source key with
// _pg_lsn (one version per key and transaction), and a state written
// before the write disposition was recorded (version 2) reads as merge.
func TestHistoryTable(t *testing.T) {
	e := newEnv(t, `CREATE TABLE h (id int PRIMARY KEY, v text); INSERT INTO h VALUES (1, 'a');`)
	e.init(replicator.InitOptions{Slot: "hs", Schema: "public", Tables: []string{"h"}, PersistSnapshots: true, WriteDisposition: "scd2"})
	e.exec(e.src, "UPDATE h SET v = 'b'")
	e.replicate("hs", 10)
	if got := e.rows(e.dst, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.h'::regclass AND contype = 'p'`); got != "PRIMARY KEY (id, _pg_lsn)" {
		t.Fatalf("primary key: %s", got)
	}
	if got := e.rows(e.dst, "SELECT id, v, _pg_valid_to IS NULL FROM h ORDER BY _pg_lsn"); got != "1|a|f\n1|b|t" {
		t.Fatalf("versions:\n%s", got)
	}
	e.exec(e.dst, `ALTER TABLE _pgcdc.slots DROP COLUMN write_disposition; ALTER TABLE _pgcdc.slots DROP COLUMN continuous; ALTER TABLE _pgcdc.tables DROP COLUMN failed; ALTER TABLE _pgcdc.tables DROP COLUMN resync_lsn; UPDATE _pgcdc.meta SET value = '2' WHERE key = 'version'`)
	dest, err := postgres.Open(e.ctx, e.dst.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	st, ok, err := dest.State(e.ctx, "hs")
	if err != nil || !ok || st.WriteDisposition != "merge" {
		t.Fatalf("state after migrating from version 2: %+v %v %v", st, ok, err)
	}
	if got := e.rows(e.dst, "SELECT value FROM _pgcdc.meta WHERE key = 'version'"); got != "4" {
		t.Fatalf("state version %s", got)
	}
}

// TestPlainMergeValues: batches without unchanged TOAST or soft deletes
// travel as array parameters; every value, however it is spelled, arrives
// as the source wrote it, and keys of one and of several columns (one of
// them changing) are merged.
func TestPlainMergeValues(t *testing.T) {
	e := newEnv(t, `CREATE TYPE pair AS (a int, b text);
		CREATE TABLE v (k text PRIMARY KEY, t text, ta text[], p pair, pa pair[], j jsonb, n numeric);
		CREATE TABLE m (a int, b text, v text, PRIMARY KEY (a, b));`)
	e.init(replicator.InitOptions{Slot: "plain", Schema: "public", Tables: []string{"v", "m"}, PersistSnapshots: true})
	e.exec(e.src, `INSERT INTO v VALUES
		('plain', 'x', '{a,b}', ROW(1, 'one'), ARRAY[ROW(1, 'a,b')::pair, ROW(2, NULL)::pair], '{"a": [1, "}"]}', 1.5),
		('quote "q" \back\slash', 'NULL', '{"NULL",NULL,""}', ROW(NULL, '"'), '{}', '"\\"', 'NaN'),
		('{braces}, comma', '', ARRAY['{', '}', ',', ' '], NULL, NULL, 'null', NULL),
		(' spaced ', E'tab\there\nnewline', '{{a,b},{c,d}}', ROW(3, '(x)'), NULL, '[]', '-0.0001'),
		('gone', 'x', NULL, NULL, NULL, NULL, NULL);
		INSERT INTO m VALUES (1, 'a', 'one'), (1, 'b', 'two'), (2, 'a"', 'three')`)
	e.replicate("plain", 1000)
	e.sameTable("v", "k")
	e.sameTable("m", "a, b")
	e.exec(e.src, `UPDATE v SET t = t || '!' WHERE k <> 'plain'; DELETE FROM v WHERE k = 'gone';
		UPDATE v SET k = 'renamed {key}' WHERE k = 'plain';
		UPDATE m SET b = 'c' WHERE a = 1 AND b = 'a'; DELETE FROM m WHERE a = 2; INSERT INTO m VALUES (2, 'a"', 'back')`)
	e.replicate("plain", 1000)
	e.sameTable("v", "k")
	e.sameTable("m", "a, b")
}

// TestUpsertNeedsTheKey: a batch is merged with ON CONFLICT only where the
// table has its key as primary key. A table that joins the publication
// mid-stream gets its key at commit, after its first changes; a replica
// whose key someone dropped is still merged, by delete and insert; and a
// row inserted again after a soft delete is live again.
func TestUpsertNeedsTheKey(t *testing.T) {
	e := newEnv(t, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'x'), (2, 'y')`)
	e.init(replicator.InitOptions{Slot: "up", Schema: "public", PersistSnapshots: true})
	e.exec(e.src, `CREATE TABLE joined (id int PRIMARY KEY, v text);
		INSERT INTO joined SELECT g, 'v' || g FROM generate_series(1, 5) g; UPDATE joined SET v = v || '!' WHERE id <= 2;
		UPDATE a SET v = 'x2' WHERE id = 1`)
	e.replicate("up", 1000)
	e.sameTable("joined", "id")
	e.sameTable("a", "id")
	e.exec(e.dst, `ALTER TABLE a DROP CONSTRAINT a_pkey`)
	e.exec(e.src, `UPDATE joined SET v = 'again' WHERE id IN (1, 3); INSERT INTO joined VALUES (6, 'six'); DELETE FROM joined WHERE id = 5;
		UPDATE a SET v = 'x3' WHERE id = 1; INSERT INTO a VALUES (3, 'z')`)
	e.replicate("up", 1000)
	e.sameTable("joined", "id")
	e.sameTable("a", "id")
	e.exec(e.src, `DELETE FROM joined WHERE id = 4`)
	if _, err := e.repl.Replicate(e.ctx, replicator.ReplicateOptions{Slot: "up", Publication: "up_pub", BatchSize: 1000, FlushSlot: true, SoftDelete: true}); err != nil {
		t.Fatal(err)
	}
	e.exec(e.src, `INSERT INTO joined VALUES (4, 'back')`)
	e.replicate("up", 1000)
	if got := e.rows(e.dst, `SELECT id, v, _pg_deleted_ts IS NULL FROM joined ORDER BY id`); got != "1|again|t\n2|v2!|t\n3|again|t\n4|back|t\n6|six|t" {
		t.Fatalf("after a soft delete and an insert of the same key:\n%s", got)
	}
}
