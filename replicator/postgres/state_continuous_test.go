package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/postgres"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// TestStateMigratesFromVersion2 opens a destination whose state has the
// version-2 layout, which has no continuous, failed or resync_lsn columns,
// and round-trips a state that uses them.
func TestStateMigratesContinuousFromVersion2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "pgstate_v2"
	if err := destination.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := destination.Exec(ctx, name, `CREATE SCHEMA _pgcdc;
		CREATE TABLE _pgcdc.meta (key text PRIMARY KEY, value text NOT NULL);
		INSERT INTO _pgcdc.meta VALUES ('version', '2');
		CREATE TABLE _pgcdc.slots (slot_name text PRIMARY KEY, publication text NOT NULL, lsn pg_lsn NOT NULL,
			system_identifier text, timeline integer, database_name text, slot_lsn pg_lsn NOT NULL, owns_slot boolean NOT NULL,
			owns_publication boolean NOT NULL, ready boolean NOT NULL, publish text NOT NULL, dataset text, schemas jsonb NOT NULL,
			last_replicated_at timestamptz);
		CREATE TABLE _pgcdc.tables (slot_name text NOT NULL, position integer NOT NULL, source_oid oid NOT NULL,
			source_schema text NOT NULL, source_name text NOT NULL, dest_schema text NOT NULL, dest_name text NOT NULL,
			include_columns jsonb, hints jsonb, PRIMARY KEY (slot_name, position));
		INSERT INTO _pgcdc.slots VALUES ('s', 'p', '0/64', NULL, NULL, NULL, '0/32', true, true, true, 'insert', NULL, '[]', NULL);
		INSERT INTO _pgcdc.tables VALUES ('s', 0, 7, 'shop', 'orders', 'shop', 'orders', NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	d, err := postgres.Open(ctx, destination.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, ok, err := d.State(ctx, "s")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if st.LSN != 100 || st.Continuous != nil || st.Tables[0].Failed != "" || st.Tables[0].ResyncLSN != 0 {
		t.Fatalf("migrated state: %+v", st)
	}
	st.Continuous = &replica.Continuous{Paused: true, BatchSize: 50, FlushSlot: true}
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
