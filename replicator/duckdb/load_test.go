package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// sliceChunks is a ChunkSource over chunks built in memory. It counts what
// is handed out and handed back.
type sliceChunks struct {
	mu       sync.Mutex
	chunks   []*replica.Chunk
	next     int
	released int
	failAt   int // hand out this many chunks, then fail; 0: never
	err      error
}

func (s *sliceChunks) Next(ctx context.Context) (*replica.Chunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAt > 0 && s.next == s.failAt {
		return nil, s.err
	}
	if s.next == len(s.chunks) {
		return nil, replica.ErrNoMoreChunks
	}
	s.next++
	return s.chunks[s.next-1], nil
}

func (s *sliceChunks) Release(c *replica.Chunk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released++
}

// chunksOf splits rows (COPY text values, nil for NULL) into chunks of at
// most per rows.
func chunksOf(rows []replica.Row, per int) []*replica.Chunk {
	var out []*replica.Chunk
	for len(rows) > 0 {
		n := min(per, len(rows))
		c := &replica.Chunk{NCols: len(rows[0].Values)}
		for _, r := range rows[:n] {
			for _, v := range r.Values {
				c.Null = append(c.Null, v == nil)
				c.Data = append(c.Data, v...)
				c.Ends = append(c.Ends, len(c.Data))
			}
		}
		out = append(out, c)
		rows = rows[n:]
	}
	return out
}

func loadTable(name string) *replica.Table {
	return &replica.Table{Schema: "public", Name: name, SourceSchema: "public", SourceName: name, Columns: []replica.Column{
		{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true, Num: 1},
		{Name: "i2", TypeOID: 21, TypeName: "smallint", Num: 2},
		{Name: "i4", TypeOID: 23, TypeName: "integer", Num: 3},
		{Name: "ok", TypeOID: 16, TypeName: "boolean", Num: 4},
		{Name: "f4", TypeOID: 700, TypeName: "real", Num: 5},
		{Name: "f8", TypeOID: 701, TypeName: "double precision", Num: 6},
		{Name: "n", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4, TypeName: "numeric(12,2)", Num: 7},
		{Name: "t", TypeOID: 25, TypeName: "text", Num: 8},
		{Name: "at", TypeOID: 1184, TypeName: "timestamp with time zone", Num: 9},
		{Name: "d", TypeOID: 1082, TypeName: "date", Num: 10},
		{Name: "iv", TypeOID: 1186, TypeName: "interval", Num: 11},
		{Name: "tags", TypeOID: 1009, ElemOID: 25, Dims: 1, TypeName: "text[]", Num: 12},
		{Name: "doc", TypeOID: 3802, TypeName: "jsonb", Num: 13},
		{Name: "b", TypeOID: 17, TypeName: "bytea", Num: 14},
		{Name: "u", TypeOID: 2950, TypeName: "uuid", Num: 15},
		{Name: "hinted", TypeOID: 23, TypeName: "integer", Num: 16, Hint: &replica.TypeHint{DataType: "text"}},
	}}
}

// loadRows are values as Postgres prints them, edge cases first.
func loadRows(n int) []replica.Row {
	rows := []replica.Row{
		row("1", "-32768", "-2147483648", "t", "NaN", "Infinity", "-0.01", "tab\there\nnew\\line ü", "0044-03-15 10:00:00+00 BC", "0001-01-01 BC",
			"1 year 2 mons -3 days +04:05:06.5", `{"a b",NULL,"c\"d"}`, `{"k": [1, 2.5]}`, `\x00ff`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "7"),
		row("2", "32767", "2147483647", "f", "-Infinity", "-Infinity", "9999999999.99", "", "2262-04-11 23:47:16.854775+00", "5874897-12-31",
			"-178000000 years", "{}", "null", `\x`, "00000000-0000-0000-0000-000000000000", "-8"),
		row("3", "0", "0", "t", "1.17549435e-38", "4.9e-324", "0.00", "NULL", "2026-01-01 00:00:00.000001+00", "2000-02-29",
			"00:00:00", "{NULL}", `"x"`, `\xdeadbeef`, "ffffffff-ffff-ffff-ffff-ffffffffffff", "0"),
		row("4", "NULL", "NULL", "NULL", "-0", "1.7976931348623157e+308", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"),
		row("5", "1", "1", "f", "3.4028235e+38", "0.1", "1.5", "x", "infinity", "-infinity", "1 day", `{a,b}`, `[1, "two"]`, `\x41`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12", "1"),
	}
	for i := len(rows) + 1; i <= n; i++ {
		rows = append(rows, row(fmt.Sprint(i), fmt.Sprint(i%30000), fmt.Sprint(i*7), "t", fmt.Sprintf("%g", float32(i)/3), fmt.Sprintf("%v", float64(i)/7),
			fmt.Sprintf("%d.%02d", i, i%100), fmt.Sprintf("name %d", i), "2026-01-01 00:00:00+00", "2026-01-02", "1 mon", fmt.Sprintf("{a%d,b}", i%10),
			fmt.Sprintf(`{"g": %d}`, i), `\x0102`, fmt.Sprintf("a0eebc99-9c0b-4ef8-bb6d-%012x", i), fmt.Sprint(i)))
	}
	return rows
}

// LoadChunks stores exactly what Load stores, value for value, over many
// chunks read by several DuckDB threads.
func TestLoadChunksMatchesLoad(t *testing.T) {
	d := open(t)
	rows := loadRows(7000)
	viaRows, viaChunks := loadTable("via_rows"), loadTable("via_chunks")
	src := &sliceChunks{chunks: chunksOf(rows, 1000)}
	var n int64
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		for _, tbl := range []*replica.Table{viaRows, viaChunks} {
			if _, err := tx.EnsureTable(ctx, tbl); err != nil {
				return err
			}
		}
		if err := tx.Load(ctx, viaRows, rows, 42); err != nil {
			return err
		}
		var err error
		n, err = tx.(replica.ChunkLoader).LoadChunks(ctx, viaChunks, 42, src)
		return err
	})
	if n != int64(len(rows)) {
		t.Fatalf("LoadChunks loaded %d rows, want %d", n, len(rows))
	}
	if src.released != len(src.chunks) {
		t.Errorf("%d of %d chunks released", src.released, len(src.chunks))
	}
	// Every value as DuckDB prints it, and the stored types.
	q := `SELECT *, CAST(f4 AS VARCHAR) AS f4s, CAST(f8 AS VARCHAR) AS f8s, typeof(i2), typeof(f4), typeof(tags), typeof(hinted) FROM %s ORDER BY id`
	want, got := dump(t, d, fmt.Sprintf(q, "public.via_rows")), dump(t, d, fmt.Sprintf(q, "public.via_chunks"))
	if got != want {
		w, g := strings.Split(want, ";"), strings.Split(got, ";")
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				t.Fatalf("row %d differs:\nLoad:       %s\nLoadChunks: %s", i, w[i], g[i])
			}
		}
		t.Fatalf("LoadChunks stored %d rows, Load %d", len(g), len(w))
	}
	// The exact float values, not only what both paths agree on.
	if got := dump(t, d, `SELECT f4::VARCHAR, f8::VARCHAR, f4 = CAST('3.4028235e+38' AS FLOAT) FROM public.via_chunks WHERE id IN (1, 3, 5) ORDER BY id`); got != "nan|inf|false;1.1754944e-38|5e-324|false;3.4028235e+38|0.1|true" {
		t.Fatalf("floats: %s", got)
	}
}

// An error from the source ends the load with that error, unwrapped.
func TestLoadChunksReturnsSourceError(t *testing.T) {
	d := open(t)
	tbl := loadTable("failing")
	boom := errors.New("source went away")
	src := &sliceChunks{chunks: chunksOf(loadRows(3000), 500), failAt: 2, err: boom}
	ctx := context.Background()
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.(replica.ChunkLoader).LoadChunks(ctx, tbl, 1, src); err != boom {
		t.Fatalf("LoadChunks = %v, want the source's error", err)
	}
}

// A value the fast path cannot read is an error naming the column.
func TestLoadChunksRefusesBadValue(t *testing.T) {
	d := open(t)
	tbl := &replica.Table{Schema: "public", Name: "bad", SourceSchema: "public", SourceName: "bad", Columns: []replica.Column{
		{Name: "id", TypeOID: 23, TypeName: "integer", Key: true, Num: 1},
	}}
	src := &sliceChunks{chunks: chunksOf([]replica.Row{row("1"), row("2147483648")}, 10)}
	ctx := context.Background()
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.(replica.ChunkLoader).LoadChunks(ctx, tbl, 1, src); err == nil || !strings.Contains(err.Error(), "public.bad column id") {
		t.Fatalf("LoadChunks = %v, want an error naming the column", err)
	}
}

// Empty strings stay empty strings, and NULLs NULL, also at the start of a
// chunk that holds no bytes yet.
func TestLoadChunksEmptyIsNotNull(t *testing.T) {
	d := open(t)
	tbl := &replica.Table{Schema: "public", Name: "empty", SourceSchema: "public", SourceName: "empty", Columns: []replica.Column{
		{Name: "t", TypeOID: 25, TypeName: "text", Num: 1},
	}}
	src := &sliceChunks{chunks: chunksOf([]replica.Row{row(""), row("NULL"), row("")}, 10)}
	inTx(t, d, func(ctx context.Context, tx replica.Tx) error {
		if _, err := tx.EnsureTable(ctx, tbl); err != nil {
			return err
		}
		_, err := tx.(replica.ChunkLoader).LoadChunks(ctx, tbl, 1, src)
		return err
	})
	if got := dump(t, d, `SELECT count(*) FILTER (WHERE t = ''), count(*) FILTER (WHERE t IS NULL) FROM public.empty`); got != "2|1" {
		t.Fatalf("empty strings and NULLs: %s, want 2|1", got)
	}
}
