package duckdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// ordersTable is a replicated table with source types DuckDB spells
// differently: numeric(12,2), varchar(20), text[], timestamptz(3).
func ordersTable() *replica.Table {
	return &replica.Table{Schema: "shop", Name: "orders", Columns: []replica.Column{
		{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, Num: 1},
		{Name: "amount", TypeOID: 1700, TypeMod: 12<<16 | 2 + 4, TypeName: "numeric(12,2)", Num: 2, Comment: "the total, tax included"},
		{Name: "status", TypeOID: 1043, TypeMod: 24, TypeName: "character varying(20)", Num: 3, NotNull: true},
		{Name: "tags", TypeOID: 1009, TypeMod: -1, TypeName: "text[]", ElemOID: 25, Dims: 1, Num: 4},
		{Name: "placed_at", TypeOID: 1184, TypeMod: 3, TypeName: "timestamp(3) with time zone", Num: 5},
	}}
}

// TestCatalogDescribesSourceTypes: a client session's pg_catalog describes
// a replicated table with its source's types, key and NOT NULL, and the
// type OIDs join pg_type.
func TestCatalogDescribesSourceTypes(t *testing.T) {
	d := openFile(t)
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		_, err := tx.EnsureTable(ctx, ordersTable())
		return err
	})
	s := openSession(t, d)
	got := mustRun(t, s, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, t.typname
		FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = 'shop.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)
	want := []string{"id|bigint|true|int8", "amount|numeric(12,2)|false|numeric", "status|character varying(20)|true|varchar",
		"tags|text[]|false|_text", "placed_at|timestamp(3) with time zone|false|timestamptz",
		"_pg_lsn|bigint|false|int8"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := mustRun(t, s, `SELECT c2.relname, i.indisprimary, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), pg_catalog.pg_get_constraintdef(con.oid, true)
		FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i
		LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x'))
		WHERE c.oid = 'shop.orders'::regclass AND c.oid = i.indrelid AND i.indexrelid = c2.oid`); len(got) != 1 ||
		got[0] != "orders_pkey|true|CREATE UNIQUE INDEX orders_pkey ON shop.orders USING btree (id)|PRIMARY KEY (id)" {
		t.Errorf("primary key: %q", got)
	}
	// pgcdc's schemas and DuckDB's main stay out of listings; pgcdc's
	// functions have a schema of their own.
	if got := strings.Join(mustRun(t, s, `SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1`), " "); got != "information_schema pg_catalog pg_toast pgcdc public shop" {
		t.Errorf("schemas: %s", got)
	}
	if got := strings.Join(mustRun(t, s, `SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`), " "); got != "shop.orders" {
		t.Errorf("information_schema.tables: %s", got)
	}
	if got := mustRun(t, s, `SELECT p.proname, pg_catalog.pg_get_function_arguments(p.oid) FROM pg_catalog.pg_proc p
		JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgcdc' AND p.proname = 'replication_status'`); len(got) != 1 ||
		got[0] != "replication_status|slot_name text DEFAULT NULL::text, table_detail boolean DEFAULT false" {
		t.Errorf("pg_proc: %q", got)
	}
	// The source's comments are the columns' comments; the DuckDB column
	// comments that record source attnums are pgcdc's, not the user's.
	if got := mustRun(t, s, `SELECT objsubid, description FROM pg_catalog.pg_description WHERE classoid = 'pg_class'::regclass`); len(got) != 1 ||
		got[0] != "2|the total, tax included" {
		t.Errorf("pg_description: %q", got)
	}
	if got := mustRun(t, s, `SELECT col_description('shop.orders'::regclass, 2)`); got[0] != "the total, tax included" {
		t.Errorf("col_description: %q", got)
	}
}

// TestCatalogFollowsRenamesAndDrops: the recorded source types move with a
// table and go with it.
func TestCatalogFollowsRenamesAndDrops(t *testing.T) {
	d := openFile(t)
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		_, err := tx.EnsureTable(ctx, ordersTable())
		return err
	})
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		return tx.RenameTable(ctx, replica.TableName{Schema: "shop", Name: "orders"}, replica.TableName{Schema: "archive", Name: "old_orders"})
	})
	s := openSession(t, d)
	if got := mustRun(t, s, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'archive.old_orders'::regclass AND attname = 'amount'`); len(got) != 1 || got[0] != "numeric(12,2)" {
		t.Errorf("after the move: %q", got)
	}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		_, err := tx.DropTable(ctx, "archive", "old_orders")
		return err
	})
	if got := engineValue(t, d, `SELECT count(*) FROM _pgcdc.columns`); got != "0" {
		t.Errorf("_pgcdc.columns keeps %s rows of a dropped table", got)
	}
}
