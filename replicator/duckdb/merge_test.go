package duckdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// A transaction stages the batches of a keyed table and merges them when
// it commits (merge.go). These cases hold several batches of one key in one
// transaction, each followed by what must see the earlier ones merged.
func TestStagedMergeAcrossBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cols := func(soft bool) *replica.Table {
		tbl := &replica.Table{Schema: "public", Name: "m", Columns: []replica.Column{
			{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true, Num: 1, NotNull: true},
			{Name: "v", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4, TypeName: "numeric(12,2)", Num: 2},
			{Name: "note", TypeOID: 25, TypeName: "text", Num: 3},
		}, HasDeletedTS: soft}
		return tbl
	}
	row := func(id int, v, note string) replica.Row {
		r := replica.Row{Values: [][]byte{[]byte(fmt.Sprint(id)), []byte(v), []byte(note)}}
		if note == "<unchanged>" {
			r.Values[2] = nil
			r.Unchanged = []bool{false, false, true}
		}
		return r
	}
	type step func(t *testing.T, tx replica.Tx, tbl *replica.Table, lsn *uint64)
	batch := func(f func(b *replica.Batch, lsn uint64)) step {
		return func(t *testing.T, tx replica.Tx, tbl *replica.Table, lsn *uint64) {
			b := replica.NewBatch(tbl)
			*lsn++
			f(b, *lsn)
			for i := range b.Changes { // rows as wide as the table now is
				for len(b.Changes[i].Row.Values) < len(tbl.Columns) {
					b.Changes[i].Row.Values = append(b.Changes[i].Row.Values, nil)
				}
				if u := b.Changes[i].Row.Unchanged; u != nil && len(u) < len(tbl.Columns) {
					b.Changes[i].Row.Unchanged = append(u, make([]bool, len(tbl.Columns)-len(u))...)
				}
			}
			if err := tx.Apply(ctx, tbl, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	ins := func(id int, v, note string) step {
		return batch(func(b *replica.Batch, lsn uint64) { b.Insert(row(id, v, note), lsn, time.Now()) })
	}
	upd := func(id int, v, note string) step {
		return batch(func(b *replica.Batch, lsn uint64) { b.Update(nil, row(id, v, note), lsn, time.Now()) })
	}
	del := func(id int, soft bool) step {
		// As pgoutput sends a key: the other columns are NULL.
		key := replica.Row{Values: [][]byte{[]byte(fmt.Sprint(id)), nil, nil}}
		return batch(func(b *replica.Batch, lsn uint64) { b.Delete(key, lsn, time.Now(), soft) })
	}
	truncate := func(t *testing.T, tx replica.Tx, tbl *replica.Table, lsn *uint64) {
		if err := tx.Truncate(ctx, tbl); err != nil {
			t.Fatal(err)
		}
	}
	addColumn := func(t *testing.T, tx replica.Tx, tbl *replica.Table, lsn *uint64) {
		tbl.Columns = append(tbl.Columns, replica.Column{Name: "extra", TypeOID: 23, TypeName: "integer", Num: 4})
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		soft  bool
		steps []step
		want  string // rows as id|v|note[|deleted], ordered by id
	}{
		{"last update wins", false, []step{ins(1, "1.00", "a"), upd(1, "2.00", "b"), upd(1, "3.50", "c")}, "1|3.50|c"},
		{"insert then delete", false, []step{ins(1, "1", "a"), ins(2, "2", "b"), del(1, false)}, "2|2.00|b"},
		{"delete then insert", false, []step{ins(1, "1", "a"), del(1, false), ins(1, "9", "z")}, "1|9.00|z"},
		{"unchanged TOAST reads the staged row", false, []step{ins(1, "1", "kept"), upd(1, "2", "<unchanged>")}, "1|2.00|kept"},
		{"soft delete keeps the staged row", true, []step{ins(1, "1", "a"), upd(1, "2", "b"), del(1, true)}, "1|2.00|b|deleted"},
		{"truncate drops what was staged", false, []step{ins(1, "1", "a"), truncate, ins(2, "2", "b")}, "2|2.00|b"},
		{"a new column after staged changes", false, []step{ins(1, "1", "a"), addColumn, upd(1, "2", "b")}, "1|2.00|b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := duckdb.Open(ctx, t.TempDir()+"/m.duckdb")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			tbl := cols(c.soft)
			tx, err := d.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.EnsureTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			var lsn uint64
			for _, s := range c.steps {
				s(t, tx, tbl, &lsn)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			rows, err := d.DB().QueryContext(ctx, `SELECT id, CAST(v AS VARCHAR), note, _pg_deleted_ts IS NOT NULL FROM public.m ORDER BY id`)
			if err != nil && c.soft {
				t.Fatal(err)
			}
			if err != nil {
				rows, err = d.DB().QueryContext(ctx, `SELECT id, CAST(v AS VARCHAR), note, false FROM public.m ORDER BY id`)
				if err != nil {
					t.Fatal(err)
				}
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var id int
				var v, note string
				var deleted bool
				if err := rows.Scan(&id, &v, &note, &deleted); err != nil {
					t.Fatal(err)
				}
				s := fmt.Sprintf("%d|%s|%s", id, v, note)
				if deleted {
					s += "|deleted"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, ","); g != c.want {
				t.Fatalf("replica holds %q, want %q", g, c.want)
			}
		})
	}
}

// A transaction that rolls back leaves nothing of what it staged, and the
// connection it used stages again cleanly.
func TestStagedMergeRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := duckdb.Open(ctx, t.TempDir()+"/r.duckdb")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tbl := &replica.Table{Schema: "public", Name: "r", Columns: []replica.Column{
		{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true, Num: 1},
	}}
	for i, commit := range []bool{false, true} {
		tx, err := d.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		b := replica.NewBatch(tbl)
		b.Insert(replica.Row{Values: [][]byte{[]byte(fmt.Sprint(i))}}, 1, time.Now())
		if err := tx.Apply(ctx, tbl, b); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var ids string
	if err := d.DB().QueryRowContext(ctx, `SELECT string_agg(CAST(id AS VARCHAR), ',' ORDER BY id) FROM public.r`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if ids != "1" {
		t.Fatalf("replica holds ids %q, want only the committed 1", ids)
	}
}
