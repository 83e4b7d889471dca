package duckdb_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/duckdb"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// TestStateMigratesFromVersion1 opens a file written with the first state
// layout: one row per slot with tables as "schema.name" strings.
func TestStateMigratesFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.duckdb")
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE SCHEMA _pgcdc;
		CREATE TABLE _pgcdc.state (slot_name VARCHAR NOT NULL, publication VARCHAR NOT NULL, lsn UBIGINT NOT NULL,
			dataset VARCHAR, tables VARCHAR[], last_replicated_at TIMESTAMPTZ);
		INSERT INTO _pgcdc.state VALUES ('s1', 'p1', 4096, NULL, ['shop.orders', 'shop.order.lines'], NULL)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	for range 2 { // the second open finds the current version
		d, err := duckdb.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		st, ok, err := d.State(context.Background(), "s1")
		d.Close()
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		want := replica.State{Slot: "s1", Publication: "p1", LSN: 4096, OwnsSlot: true, OwnsPublication: true, Ready: true, WriteDisposition: replica.DispositionMerge,
			Schemas: []string{}, Tables: []replica.TableState{
				{Dest: replica.TableName{Schema: "shop", Name: "orders"}},
				{Dest: replica.TableName{Schema: "shop", Name: "order.lines"}},
			}}
		if !reflect.DeepEqual(st, want) {
			t.Fatalf("migrated state:\n got %+v\nwant %+v", st, want)
		}
	}
}

// TestStateMigratesFromVersion2 opens a file written before the write
// disposition was recorded: its slots merge.
func TestStateMigratesFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.duckdb")
	d, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SaveState(ctx, replica.State{Slot: "s1", Publication: "p1", LSN: 4096, Ready: true, WriteDisposition: replica.DispositionSCD2}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d.Close()
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`ALTER TABLE _pgcdc.slots DROP COLUMN write_disposition; ALTER TABLE _pgcdc.slots DROP COLUMN continuous; ALTER TABLE _pgcdc.tables DROP COLUMN failed; ALTER TABLE _pgcdc.tables DROP COLUMN resync_lsn; UPDATE _pgcdc.meta SET value = '2' WHERE key = 'version'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for range 2 {
		d, err := duckdb.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		st, ok, err := d.State(ctx, "s1")
		d.Close()
		if err != nil || !ok || st.WriteDisposition != replica.DispositionMerge || st.LSN != 4096 {
			t.Fatalf("migrated state: %+v, %v, %v", st, ok, err)
		}
	}
}
