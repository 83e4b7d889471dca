package duckdb_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// BenchmarkApplyBatch is the destination's write path for one batch of
// 1000 collapsed upserts (half new keys, half existing) into a table of
// 100k rows: staging the rows through the table function, the set-based
// merge and the commit. One op is one batch.
func BenchmarkApplyBatch(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d := openB(b)
	tbl := &replica.Table{Schema: "public", Name: "accounts", Columns: []replica.Column{
		{Name: "aid", TypeOID: 23, TypeName: "integer", Key: true, Num: 1},
		{Name: "bid", TypeOID: 23, TypeName: "integer", Num: 2},
		{Name: "abalance", TypeOID: 23, TypeName: "integer", Num: 3},
		{Name: "filler", TypeOID: 1042, TypeMod: 88, TypeName: "character(84)", Num: 4},
	}}
	filler := []byte("                                                                                    ")
	mk := func(aid, bal int) replica.Row {
		return replica.Row{Values: [][]byte{[]byte(strconv.Itoa(aid)), []byte("1"), []byte(strconv.Itoa(bal)), filler}}
	}
	apply := func(rows []replica.Row) {
		tx, err := d.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			b.Fatal(err)
		}
		batch := replica.NewBatch(tbl)
		for i, r := range rows {
			batch.Insert(r, uint64(i+1), time.Now())
		}
		if err := tx.Apply(ctx, tbl, batch); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	const initial, size = 100_000, 1000
	seed := make([]replica.Row, initial)
	for i := range seed {
		seed[i] = mk(i, 0)
	}
	apply(seed)
	rows := make([]replica.Row, size)
	next := initial
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range rows {
			if j%2 == 0 {
				rows[j] = mk(next, i)
				next++
			} else {
				rows[j] = mk((i*size+j)%initial, i)
			}
		}
		apply(rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/row")
}

func openB(b *testing.B) *duckdb.Destination {
	b.Helper()
	d, err := duckdb.Open(context.Background(), b.TempDir()+"/bench.duckdb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}
