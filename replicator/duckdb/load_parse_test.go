package duckdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func typedTable(name string) *replica.Table {
	numeric := func(p, s int) int32 { return int32(p<<16|s) + 4 }
	return &replica.Table{Schema: "public", Name: name, SourceSchema: "public", SourceName: name, Columns: []replica.Column{
		{Name: "id", TypeOID: 23, TypeName: "integer", Key: true, Num: 1},
		{Name: "ts", TypeOID: 1114, TypeName: "timestamp without time zone", Num: 2},
		{Name: "tz", TypeOID: 1184, TypeName: "timestamp with time zone", Num: 3},
		{Name: "d", TypeOID: 1082, TypeName: "date", Num: 4},
		{Name: "n4", TypeOID: 1700, TypeMod: numeric(4, 4), TypeName: "numeric(4,4)", Num: 5},
		{Name: "n18", TypeOID: 1700, TypeMod: numeric(18, 0), TypeName: "numeric(18,0)", Num: 6},
		{Name: "n20", TypeOID: 1700, TypeMod: numeric(20, 0), TypeName: "numeric(20,0)", Num: 7},
		{Name: "n38", TypeOID: 1700, TypeMod: numeric(38, 10), TypeName: "numeric(38,10)", Num: 8},
		{Name: "n", TypeOID: 1700, TypeMod: -1, TypeName: "numeric", Num: 9},
		{Name: "u", TypeOID: 2950, TypeName: "uuid", Num: 10},
		{Name: "b", TypeOID: 17, TypeName: "bytea", Num: 11},
	}}
}

// The values the load function parses in Go land exactly as DuckDB's casts
// of the same text (the staged path) store them: Postgres's output at the
// ends of every range, BC, infinity, offsets and fractions.
func TestLoadChunksTypedMatchesLoad(t *testing.T) {
	d := open(t)
	rows := []replica.Row{
		row("1", "2026-01-01 00:00:00", "2026-01-01 00:00:00+00", "2026-01-01", "0.0001", "999999999999999999", "99999999999999999999",
			"9999999999999999999999999999.9999999999", "123456789012345678901234567890.12345678901234567890", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `\x`),
		row("2", "0044-03-15 10:00:00.123456 BC", "0044-03-15 10:00:00.5+00 BC", "0001-01-01 BC", "-0.9999", "-999999999999999999", "-99999999999999999999",
			"-9999999999999999999999999999.9999999999", "NaN", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", `\xDEADbeef`),
		row("3", "infinity", "infinity", "infinity", "0.0000", "0", "0", "0.0000000000", "-0.000", "00000000-0000-0000-0000-000000000000", `\x00`),
		row("4", "-infinity", "-infinity", "-infinity", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"),
		row("5", "1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999-16:00", "1969-12-31", "0.5000", "-1", "10000000000000000000",
			"0.0000000001", "1e5", "ffffffff-ffff-ffff-ffff-ffffffffffff", `\x7f80`),
		row("6", "4713-11-24 00:00:00 BC", "4713-11-24 00:00:00+00 BC", "4714-11-24 BC", "0.1230", "1", "-10000000000000000000",
			"-0.0000000001", "0", "12345678-1234-5678-9abc-def012345678", `\x0102`),
		row("7", "294246-12-31 23:59:59.999999", "294246-12-31 23:59:59.999999+00", "5874897-12-31", "0.0010", "123", "18446744073709551616",
			"123.4500000000", "1.5", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12", `\xff`),
		row("8", "2000-02-29 12:34:56.7", "2000-02-29 12:34:56.78+05:30", "2000-02-29", "0.0100", "123456789012345678", "9223372036854775808",
			"9223372036854775807.0000000001", "Infinity", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13", `\xab`),
		row("9", "10000-01-01 00:00:00", "1900-01-01 00:00:00-03:30:45", "10000-01-01", "0.2000", "-100000000000000000", "-9223372036854775809",
			"1.0000000000", "-Infinity", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14", `\xcd`),
	}
	viaRows, viaChunks := typedTable("via_rows"), typedTable("via_chunks")
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		for _, tbl := range []*replica.Table{viaRows, viaChunks} {
			if _, err := tx.EnsureTable(ctx, tbl); err != nil {
				return err
			}
		}
		if err := tx.Load(ctx, viaRows, rows, 1); err != nil {
			return err
		}
		_, err := tx.(replica.ChunkLoader).LoadChunks(ctx, viaChunks, 1, &sliceChunks{chunks: chunksOf(rows, 4)})
		return err
	})
	q := `SELECT *, epoch_us(ts), epoch_us(tz), CAST(d AS VARCHAR), CAST(n38 AS VARCHAR), typeof(tz), typeof(n38), typeof(u), typeof(b) FROM %s ORDER BY id`
	want, got := dump(t, d, fmt.Sprintf(q, "public.via_rows")), dump(t, d, fmt.Sprintf(q, "public.via_chunks"))
	w, g := strings.Split(want, ";"), strings.Split(got, ";")
	if len(w) != len(rows) {
		t.Fatalf("Load stored %d rows, want %d", len(w), len(rows))
	}
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			t.Errorf("row %d differs:\nLoad:       %s\nLoadChunks: %s", i+1, w[i], g[i])
		}
	}
	if len(g) != len(w) {
		t.Fatalf("LoadChunks stored %d rows, Load %d", len(g), len(w))
	}
	// Not only the same as the cast: the values themselves.
	if got := dump(t, d, `SELECT CAST(tz AS VARCHAR), epoch_us(ts), CAST(d AS VARCHAR), CAST(n20 AS VARCHAR) FROM public.via_chunks WHERE id IN (2, 3, 8) ORDER BY id`); got != "0044-03-15 (BC) 10:00:00.5+00|-63517787999876544|0001-01-01 (BC)|-99999999999999999999;infinity|NULL|infinity|0;2000-02-29 07:04:56.78+00|951827696700000|2000-02-29|9223372036854775808" {
		t.Errorf("values: %s", got)
	}
}

// What Postgres never prints for a column's type is refused, naming the
// column, rather than stored differently than the cast would.
func TestLoadChunksTypedRefuses(t *testing.T) {
	d := open(t)
	for _, c := range []struct{ col, value string }{
		{"n4", "NaN"}, {"n4", "1.0000"}, {"n4", "0.12345"}, {"n18", "1e3"}, {"n38", "NaN"},
		{"tz", "2026-01-01 00:00:00"}, {"tz", "294277-01-01 00:00:00+00"}, {"ts", "2026-02-30 00:00:00"}, {"ts", "2026-01-01T00:00:00"},
		{"d", "2026-13-01"}, {"d", "0000-01-01"}, {"u", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"}, {"u", "a0eebc99x9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"b", `\x0`}, {"b", "abc"}, {"b", `\xzz`},
	} {
		t.Run(c.col+"="+c.value, func(t *testing.T) {
			tbl := typedTable("bad")
			vals := make([]string, len(tbl.Columns))
			for i, col := range tbl.Columns {
				vals[i] = "NULL"
				if col.Name == c.col {
					vals[i] = c.value
				}
			}
			vals[0] = "1"
			ctx := context.Background()
			tx, err := d.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.EnsureTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			_, err = tx.(replica.ChunkLoader).LoadChunks(ctx, tbl, 1, &sliceChunks{chunks: chunksOf([]replica.Row{row(vals...)}, 10)})
			if err == nil || !strings.Contains(err.Error(), "public.bad column "+c.col) {
				t.Fatalf("LoadChunks = %v, want an error naming column %s", err, c.col)
			}
		})
	}
}
