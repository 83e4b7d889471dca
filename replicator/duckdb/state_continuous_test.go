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

// TestStateMigratesContinuousFromVersion2 opens a file with the version-2 layout,
// which has no continuous, failed or resync_lsn columns, and round-trips
// a state that uses them.
func TestStateMigratesContinuousFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.duckdb")
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE SCHEMA _pgcdc;
		CREATE TABLE _pgcdc.meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL);
		INSERT INTO _pgcdc.meta VALUES ('version', '2');
		CREATE TABLE _pgcdc.slots (slot_name VARCHAR NOT NULL, publication VARCHAR NOT NULL, lsn UBIGINT NOT NULL,
			system_identifier VARCHAR, timeline INTEGER, database_name VARCHAR, slot_lsn UBIGINT NOT NULL,
			owns_slot BOOLEAN NOT NULL, owns_publication BOOLEAN NOT NULL, ready BOOLEAN NOT NULL, publish VARCHAR NOT NULL,
			dataset VARCHAR, schemas VARCHAR NOT NULL, last_replicated_at TIMESTAMPTZ);
		CREATE TABLE _pgcdc.tables (slot_name VARCHAR NOT NULL, source_oid UBIGINT NOT NULL, source_schema VARCHAR NOT NULL,
			source_name VARCHAR NOT NULL, dest_schema VARCHAR NOT NULL, dest_name VARCHAR NOT NULL, include_columns VARCHAR, hints VARCHAR);
		INSERT INTO _pgcdc.slots VALUES ('s', 'p', 100, NULL, NULL, NULL, 50, true, true, true, 'insert', NULL, '[]', NULL);
		INSERT INTO _pgcdc.tables VALUES ('s', 7, 'shop', 'orders', 'shop', 'orders', NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	d, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, ok, err := d.State(ctx, "s")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if st.Continuous != nil || st.Tables[0].Failed != "" || st.Tables[0].ResyncLSN != 0 {
		t.Fatalf("migrated state has continuous or table settings: %+v", st)
	}
	st.Continuous = &replica.Continuous{Paused: true, BatchSize: 50, FlushSlot: true, SoftDelete: true}
	st.Tables[0].Failed, st.Tables[0].ResyncLSN = "boom", 4242
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SaveState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := d.State(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("state round trip:\n got %+v\nwant %+v", got, st)
	}
}
