package replica_test

import (
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func table() *replica.Table {
	return &replica.Table{Schema: "s", Name: "t", Columns: []replica.Column{
		{Name: "id", Key: true}, {Name: "v"}, {Name: "big"},
	}}
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

func unchanged(r replica.Row, cols ...int) replica.Row {
	r.Unchanged = make([]bool, len(r.Values))
	for _, c := range cols {
		r.Unchanged[c] = true
		r.Values[c] = nil
	}
	return r
}

func TestBatchCollapsesPerKey(t *testing.T) {
	now := time.Now()
	b := replica.NewBatch(table())
	b.Insert(row("1", "a", "x"), 10, now)
	b.Update(nil, row("1", "b", "x"), 11, now)
	b.Insert(row("2", "c", "y"), 12, now)
	b.Delete(row("2", "NULL", "NULL"), 13, now, false)
	if b.Len() != 4 || b.Inserts != 2 || b.Updates != 1 || b.Deletes != 1 {
		t.Fatalf("counts: len=%d ins=%d upd=%d del=%d", b.Len(), b.Inserts, b.Updates, b.Deletes)
	}
	if len(b.Changes) != 2 {
		t.Fatalf("want 2 collapsed changes, got %d", len(b.Changes))
	}
	if c := b.Changes[0]; c.Kind != replica.Upsert || string(c.Row.Values[1]) != "b" || c.LSN != 11 {
		t.Fatalf("key 1: %+v", c)
	}
	if c := b.Changes[1]; c.Kind != replica.Delete {
		t.Fatalf("key 2: %+v", c)
	}
	if b.MinLSN != 10 || b.MaxLSN != 13 {
		t.Fatalf("lsn range %d..%d", b.MinLSN, b.MaxLSN)
	}
}

func TestBatchUnchangedToastFromSameBatch(t *testing.T) {
	b := replica.NewBatch(table())
	b.Insert(row("1", "a", "BIG"), 1, time.Time{})
	b.Update(nil, unchanged(row("1", "b", "?"), 2), 2, time.Time{})
	c := b.Changes[0]
	if string(c.Row.Values[2]) != "BIG" || c.Row.HasUnchanged() || c.Lookup != nil {
		t.Fatalf("unchanged value not taken from the batch: %+v", c)
	}
}

func TestBatchUnchangedToastFromDestination(t *testing.T) {
	b := replica.NewBatch(table())
	b.Update(nil, unchanged(row("1", "b", "?"), 2), 1, time.Time{})
	b.Update(nil, unchanged(row("1", "c", "?"), 2), 2, time.Time{})
	c := b.Changes[0]
	if !c.Row.Unchanged[2] || string(c.Row.Values[1]) != "c" || c.Lookup != nil {
		t.Fatalf("want the destination to supply column 2: %+v", c)
	}
}

func TestBatchKeyChange(t *testing.T) {
	b := replica.NewBatch(table())
	old := row("1", "NULL", "NULL")
	b.Update(&old, unchanged(row("2", "v", "?"), 2), 5, time.Time{})
	if len(b.Changes) != 2 {
		t.Fatalf("want delete of the old key and upsert of the new: %+v", b.Changes)
	}
	if b.Changes[0].Kind != replica.Delete || string(b.Changes[0].Row.Values[0]) != "1" {
		t.Fatalf("old key: %+v", b.Changes[0])
	}
	up := b.Changes[1]
	if up.Kind != replica.Upsert || string(up.Lookup[0]) != "1" {
		t.Fatalf("new key must look up unchanged values under the old key: %+v", up)
	}
	// Changing the key back restores the row under key 1 in the same batch.
	old2 := row("2", "NULL", "NULL")
	b.Update(&old2, row("1", "w", "z"), 6, time.Time{})
	if b.Changes[0].Kind != replica.Upsert || string(b.Changes[0].Row.Values[1]) != "w" || b.Changes[1].Kind != replica.Delete {
		t.Fatalf("key changed back: %+v", b.Changes)
	}
}

func TestBatchSoftDelete(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := replica.NewBatch(table())
	b.Insert(row("1", "a", "x"), 1, ts)
	b.Delete(row("1", "NULL", "NULL"), 2, ts, true)
	b.Delete(row("9", "NULL", "NULL"), 3, ts, true)
	if c := b.Changes[0]; c.Kind != replica.Upsert || !c.Deleted || string(c.Row.Values[1]) != "a" || !c.CommitTime.Equal(ts) {
		t.Fatalf("soft delete of a row inserted in the batch keeps its values: %+v", c)
	}
	if c := b.Changes[1]; c.Kind != replica.SoftDelete {
		t.Fatalf("soft delete of an existing row: %+v", c)
	}
}

func TestBatchAppendOnly(t *testing.T) {
	tb := table()
	tb.AppendOnly = true
	b := replica.NewBatch(tb)
	b.Insert(row("1", "a", "x"), 1, time.Time{})
	b.Insert(row("1", "a", "x"), 2, time.Time{})
	if len(b.Changes) != 2 || b.Changes[0].Kind != replica.Append {
		t.Fatalf("append-only tables keep every row: %+v", b.Changes)
	}
}

func TestBatchFullRowCounts(t *testing.T) {
	tb := &replica.Table{Schema: "s", Name: "t", FullRow: true, Columns: []replica.Column{
		{Name: "a", Key: true}, {Name: "b", Key: true},
	}}
	b := replica.NewBatch(tb)
	b.Insert(row("1", "x"), 1, time.Time{})
	b.Insert(row("1", "x"), 2, time.Time{})
	b.Delete(row("2", "y"), 3, time.Time{}, false)
	old := row("1", "x")
	b.Update(&old, row("1", "z"), 4, time.Time{})
	got := map[string]int{}
	for _, c := range b.Changes {
		got[string(c.Row.Values[0])+string(c.Row.Values[1])] = c.Count
		if (c.Count < 0) != (c.Kind == replica.Remove) {
			t.Fatalf("kind %c with count %d", c.Kind, c.Count)
		}
	}
	if got["1x"] != 1 || got["2y"] != -1 || got["1z"] != 1 || len(got) != 3 {
		t.Fatalf("net counts = %v", got)
	}
}
