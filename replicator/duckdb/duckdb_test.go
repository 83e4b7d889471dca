package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func open(t *testing.T) *duckdb.Destination {
	t.Helper()
	d, err := duckdb.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func row(vals ...string) replica.Row {
	r := replica.Row{Values: make([][]byte, len(vals))}
	for i, v := range vals {
		if v != "NULL" {
			r.Values[i] = []byte(v)
		}
	}
	return r
}

func dump(t *testing.T, d *duckdb.Destination, q string) string {
	t.Helper()
	rows, err := d.DB().Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return strings.Join(out, ";")
}

func inTx(t *testing.T, d *duckdb.Destination, f func(context.Context, replica.Tx) error) {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f(ctx, tx); err != nil {
		tx.Rollback(ctx)
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestApplyMerges(t *testing.T) {
	d := open(t)
	tbl := &replica.Table{Schema: "s", Name: "t", HasDeletedTS: true, Columns: []replica.Column{
		{Name: "id", TypeOID: 23, Key: true}, {Name: "v", TypeOID: 25}, {Name: "big", TypeOID: 25},
	}}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			return err
		}
		return tx.Load(ctx, tbl, []replica.Row{row("1", "a", "TOAST1"), row("2", "b", "TOAST2"), row("3", "c", "x")}, 100)
	})
	if got := dump(t, d, `SELECT id, v, big, _pg_lsn FROM s.t ORDER BY id`); got != "1|a|TOAST1|100;2|b|TOAST2|100;3|c|x|100" {
		t.Fatalf("after load: %s", got)
	}

	ts := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	b := replica.NewBatch(tbl)
	// Unchanged TOAST with the row only in the destination.
	u := row("1", "a2", "NULL")
	u.Unchanged = []bool{false, false, true}
	b.Update(nil, u, 201, ts)
	// Key change 2 -> 20 with the TOAST value left out.
	old := row("2", "NULL", "NULL")
	k := row("20", "b2", "NULL")
	k.Unchanged = []bool{false, false, true}
	b.Update(&old, k, 202, ts)
	b.Delete(row("3", "NULL", "NULL"), 203, ts, false)
	b.Insert(row("4", "d", "NULL"), 204, ts)
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error { return tx.Apply(ctx, tbl, b) })
	want := "1|a2|TOAST1|201|NULL;4|d|NULL|204|NULL;20|b2|TOAST2|202|NULL"
	if got := dump(t, d, `SELECT id, v, big, _pg_lsn, _pg_deleted_ts FROM s.t ORDER BY id`); got != want {
		t.Fatalf("after apply:\n got %s\nwant %s", got, want)
	}

	// Soft deletes keep the row and stamp the commit time.
	b = replica.NewBatch(tbl)
	b.Delete(row("4", "NULL", "NULL"), 300, ts, true)
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error { return tx.Apply(ctx, tbl, b) })
	if got := dump(t, d, `SELECT id, v, _pg_lsn, _pg_deleted_ts FROM s.t WHERE id = 4`); got != "4|d|300|2026-05-06 07:08:09 +0000 UTC" {
		t.Fatalf("soft delete: %s", got)
	}
}

func TestRollbackLeavesNothing(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	tbl := &replica.Table{Schema: "s", Name: "r", Columns: []replica.Column{{Name: "id", TypeOID: 23, Key: true}}}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error { _, err := tx.EnsureTable(ctx, tbl); return err })
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Load(ctx, tbl, []replica.Row{row("1")}, 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.SaveState(ctx, replica.State{Slot: "x", Publication: "p", LSN: 5}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if got := dump(t, d, `SELECT count(*) FROM s.r`); got != "0" {
		t.Fatalf("rows after rollback: %s", got)
	}
	if _, ok, _ := d.State(ctx, "x"); ok {
		t.Fatal("state after rollback")
	}
}

// TestStateRoundTrip stores every field of a slot's state, with schema and
// table names holding the separators an older layout split on.
func TestStateRoundTrip(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	when := time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC)
	st := replica.State{Slot: "s1", Publication: "p1", LSN: 0x16B374D848, SlotLSN: 0x16B374D000,
		Source:   replica.SourceIdentity{SystemID: "7412345678901234567", Timeline: 3, Database: "shop db"},
		OwnsSlot: true, OwnsPublication: false, Ready: true, Publish: "insert, update", Dataset: "raw", WriteDisposition: replica.DispositionSCD2,
		Schemas: []string{"shop", "a.b"},
		Tables: []replica.TableState{
			{OID: 16384, Source: replica.TableName{Schema: "shop.x", Name: "a"}, Dest: replica.TableName{Schema: "raw", Name: "a.b\x01c"}},
			{OID: 16390, Source: replica.TableName{Schema: "shop", Name: "b\x01"}, Dest: replica.TableName{Schema: "raw", Name: "b"},
				IncludeColumns: []string{"id", "x.y"}, Hints: map[string]replica.TypeHint{"total": {DataType: "decimal", Precision: 12, Scale: 2}}},
		},
		LastReplicated: when}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error { return tx.SaveState(ctx, st) })
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		st.LSN++
		st.LastReplicated = when.Add(time.Second)
		return tx.SavePosition(ctx, st.Slot, st.LSN, st.LastReplicated)
	})
	got, ok, err := d.State(ctx, "s1")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	got.LastReplicated = got.LastReplicated.UTC()
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("state:\n got %+v\nwant %+v", got, st)
	}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		if err := tx.SavePosition(ctx, "nope", 1, when); err == nil {
			return errors.New("SavePosition of a slot without state succeeded")
		}
		return nil
	})
	all, _ := d.States(ctx)
	if len(all) != 1 {
		t.Fatalf("states = %+v", all)
	}
}

// TestTypeCasts loads each type's Postgres text form and reads it back.
func TestTypeCasts(t *testing.T) {
	d := open(t)
	cols := []replica.Column{
		{Name: "id", TypeOID: 23, Key: true},
		{Name: "b", TypeOID: 16}, {Name: "i2", TypeOID: 21}, {Name: "i8", TypeOID: 20},
		{Name: "f4", TypeOID: 700}, {Name: "f8", TypeOID: 701},
		{Name: "n", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4}, {Name: "nu", TypeOID: 1700, TypeMod: -1},
		{Name: "bin", TypeOID: 17}, {Name: "d", TypeOID: 1082}, {Name: "ts", TypeOID: 1114}, {Name: "tz", TypeOID: 1184},
		{Name: "u", TypeOID: 2950}, {Name: "j", TypeOID: 3802},
	}
	tbl := &replica.Table{Schema: "s", Name: "types", Columns: cols}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			return err
		}
		return tx.Load(ctx, tbl, []replica.Row{
			row("1", "t", "-32768", "9223372036854775807", "1.5", "-0.1", "12.34", "123456789012345678901234567890.123456789",
				`\x00ff41`, "2024-02-29", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456+00",
				"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": [1, 2]}`),
			row("2", "f", "NULL", "NULL", "NaN", "Infinity", "NULL", "NaN", `\x`, "infinity", "NULL", "NULL", "NULL", "NULL"),
		}, 1)
	})
	got := dump(t, d, `SELECT b, i2, i8, f4, f8, CAST(n AS VARCHAR), nu, hex(bin), d, ts, tz, CAST(u AS VARCHAR), j FROM s.types ORDER BY id`)
	want := "true|-32768|9223372036854775807|1.5|-0.1|12.34|123456789012345678901234567890.123456789|0041FF41|2024-02-29 00:00:00 +0000 UTC|2024-01-02 03:04:05.123456 +0000 UTC|2024-01-02 03:04:05.123456 +0000 UTC|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|map[a:[1 2]]"
	first := strings.Split(got, ";")[0]
	if first != strings.Replace(want, "0041FF41", "00FF41", 1) {
		t.Fatalf("types:\n got %s\nwant %s", first, strings.Replace(want, "0041FF41", "00FF41", 1))
	}
}
