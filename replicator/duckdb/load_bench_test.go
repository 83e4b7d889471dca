package duckdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// BenchmarkLoadChunks is the destination's side of a snapshot: 200k rows of
// the mixed-type table BenchmarkSnapshotLoad (package replicator) copies, as
// Postgres prints them, loaded from chunks in memory into a new table and
// committed. One op is one table; the source is left out.
func BenchmarkLoadChunks(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d := openB(b)
	const n = 200_000
	rows := make([]replica.Row, n)
	for i := range rows {
		g := i + 1
		rows[i] = row(fmt.Sprint(g), fmt.Sprintf("name %d", g), fmt.Sprintf("%.2f", float64(g)/7), fmt.Sprintf("2026-01-%02d %02d:%02d:00+00", 1+g/1440%28, g/60%24, g%60),
			fmt.Sprintf("2020-%02d-%02d", 1+g%12, 1+g%28), fmt.Sprint(g%2 == 0 && true), fmt.Sprintf("a0eebc99-9c0b-4ef8-bb6d-%012x", g), fmt.Sprint(float64(g)*1.5),
			fmt.Sprintf("{a%d,b}", g%10), fmt.Sprintf(`{"g": %d}`, g), fmt.Sprintf(`\x%032x`, g))
		rows[i].Values[5] = rows[i].Values[5][:1] // "t" / "f"
	}
	chunks := chunksOf(rows, 8192)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tbl := &replica.Table{Schema: "public", Name: fmt.Sprintf("mixed%d", i), Columns: []replica.Column{
			{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true, Num: 1},
			{Name: "name", TypeOID: 25, TypeName: "text", Num: 2},
			{Name: "amount", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4, TypeName: "numeric(12,2)", Num: 3},
			{Name: "at", TypeOID: 1184, TypeName: "timestamp with time zone", Num: 4},
			{Name: "d", TypeOID: 1082, TypeName: "date", Num: 5},
			{Name: "ok", TypeOID: 16, TypeName: "boolean", Num: 6},
			{Name: "u", TypeOID: 2950, TypeName: "uuid", Num: 7},
			{Name: "f", TypeOID: 701, TypeName: "double precision", Num: 8},
			{Name: "tags", TypeOID: 1009, ElemOID: 25, Dims: 1, TypeName: "text[]", Num: 9},
			{Name: "doc", TypeOID: 3802, TypeName: "jsonb", Num: 10},
			{Name: "b", TypeOID: 17, TypeName: "bytea", Num: 11},
		}}
		tx, err := d.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			b.Fatal(err)
		}
		got, err := tx.(replica.ChunkLoader).LoadChunks(ctx, tbl, 1, &sliceChunks{chunks: chunks})
		if err != nil || got != n {
			b.Fatalf("LoadChunks = %d, %v", got, err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
