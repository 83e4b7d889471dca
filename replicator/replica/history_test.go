package replica_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// describe renders a history batch: kind, key, commit LSN, values ("?" for
// unchanged TOAST) and the lookup key.
func describe(b *replica.Batch) string {
	var out []string
	for _, c := range b.Changes {
		var vals []string
		for i, v := range c.Row.Values {
			switch {
			case c.Row.Unchanged != nil && c.Row.Unchanged[i]:
				vals = append(vals, "?")
			case v == nil:
				vals = append(vals, "NULL")
			default:
				vals = append(vals, string(v))
			}
		}
		s := fmt.Sprintf("%c@%d %s", c.Kind, c.LSN, strings.Join(vals, ","))
		if c.Lookup != nil {
			s += fmt.Sprintf(" lookup %s", c.Lookup[0])
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func TestHistoryBatchOneChangePerKeyAndTransaction(t *testing.T) {
	tbl := table()
	tbl.History = true
	b := replica.NewBatch(tbl)
	at := time.Unix(0, 0)
	// Transaction 100: insert 1, update it twice, insert and delete 2.
	b.CommitLSN = 100
	b.Insert(row("1", "a", "x"), 10, at)
	b.Update(nil, row("1", "b", "x"), 11, at)
	b.Update(nil, unchanged(row("1", "c", "?"), 2), 12, at)
	b.Insert(row("2", "d", "y"), 13, at)
	b.Delete(row("2", "NULL", "NULL"), 14, at, false)
	// Transaction 200: update 1 (TOAST unchanged: from 100's version),
	// change 3's key to 4 with TOAST unchanged (from the destination, under
	// key 3), then update 4 again.
	b.CommitLSN = 200
	b.Update(nil, unchanged(row("1", "e", "?"), 2), 20, at)
	old := row("3", "NULL", "NULL")
	b.Update(&old, unchanged(row("4", "f", "?"), 2), 21, at)
	b.Update(nil, unchanged(row("4", "g", "?"), 2), 22, at)
	// Transaction 300: delete 1 (soft changes nothing for history).
	b.CommitLSN = 300
	b.Delete(row("1", "NULL", "NULL"), 30, at, true)

	want := "U@100 1,c,x; D@100 2,NULL,NULL; U@200 1,e,x; D@200 3,NULL,NULL; U@200 4,g,? lookup 3; D@300 1,NULL,NULL"
	if got := describe(b); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if b.Len() != 9 || b.Inserts != 2 || b.Updates != 5 || b.Deletes != 2 {
		t.Fatalf("counts: %d changes, %d/%d/%d", b.Len(), b.Inserts, b.Updates, b.Deletes)
	}
}
