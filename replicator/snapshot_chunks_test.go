package replicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgtest"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// feedChunks writes data to a chunkWriter step bytes at a time, as pgconn
// would, and returns the chunks it sent, each rendered as rows of values.
func feedChunks(t *testing.T, ncols int, limit int64, data string, step int) ([][]string, []int64, error) {
	t.Helper()
	ctx := context.Background()
	free := make(chan *replica.Chunk, snapshotChunks)
	for range snapshotChunks {
		free <- &replica.Chunk{NCols: ncols}
	}
	full := make(chan *replica.Chunk, snapshotChunks)
	w := &chunkWriter{ctx: ctx, ncols: ncols, limit: limit, free: free, full: full}
	q := &chunkQueue{w: w, full: full, free: free}
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		for i := 0; i < len(data); i += step {
			if _, err := w.Write([]byte(data[i:min(i+step, len(data))])); err != nil {
				w.done = err
				errc <- err
				return
			}
		}
		w.done = w.finish()
		errc <- w.done
	}()
	var chunks [][]string
	var sizes []int64
	for {
		c, err := q.Next(ctx)
		if err != nil {
			if err == replica.ErrNoMoreChunks {
				err = nil
			}
			<-errc
			return chunks, sizes, err
		}
		var rows []string
		for r := range c.Rows() {
			var vals []string
			for col := range ncols {
				v := c.Value(r, col)
				if v == nil {
					vals = append(vals, "<NULL>")
				} else {
					vals = append(vals, string(v))
				}
			}
			rows = append(rows, strings.Join(vals, "|"))
		}
		chunks = append(chunks, rows)
		sizes = append(sizes, c.Size()+int64(c.Rows())*rowOverhead)
		q.Release(c)
	}
}

func TestChunkWriterDecodes(t *testing.T) {
	data := "1\ta\\tb\t\\N\n2\t\\\\N\t\n3\tline\\nbreak\\x41\\101\tü\n"
	for _, step := range []int{1, 3, len(data)} {
		chunks, _, err := feedChunks(t, 3, 1<<20, data, step)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != 1 {
			t.Fatalf("step %d: %d chunks, want 1", step, len(chunks))
		}
		if got := strings.Join(chunks[0], ";"); got != "1|a\tb|<NULL>;2|\\N|;3|line\nbreakAA|ü" {
			t.Fatalf("step %d: rows = %q", step, got)
		}
	}
	for _, bad := range []string{"1\t2\n", "1\t2\t3\t4\n", "1\t2\t3"} {
		if _, _, err := feedChunks(t, 3, 1<<20, bad, 2); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Chunks are bounded by bytes whatever the row size, and every row arrives
// once, in order.
func TestChunkWriterBoundsChunksByBytes(t *testing.T) {
	const limit = 64 << 10
	var b strings.Builder
	want := 0
	for i := range 300 {
		// Rows from a few bytes to 20 kB.
		fmt.Fprintf(&b, "%d\t%s\n", i, strings.Repeat("x", (i*997)%20000))
		want++
	}
	chunks, sizes, err := feedChunks(t, 2, limit, b.String(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for i, c := range chunks {
		for _, r := range c {
			if id, _, _ := strings.Cut(r, "|"); id != fmt.Sprint(got) {
				t.Fatalf("chunk %d: row %q, want id %d", i, r, got)
			}
			got++
		}
		// A chunk is sent once it reaches the limit: it can pass it by at
		// most its last row.
		if sizes[i] > limit+20000+2*rowOverhead {
			t.Errorf("chunk %d holds %d bytes, over the %d limit by more than a row", i, sizes[i], limit)
		}
	}
	if got != want || len(chunks) < 10 {
		t.Fatalf("%d rows in %d chunks, want %d rows in many chunks", got, len(chunks), want)
	}
}

// fakeChunkLoader loads nothing: it reads chunks, records the largest, and
// fails after failAfter chunks when failAfter > 0.
type fakeChunkLoader struct {
	failAfter int
	err       error
	maxSize   int64
	chunks    int
}

func (f *fakeChunkLoader) LoadChunks(ctx context.Context, t *replica.Table, lsn uint64, src replica.ChunkSource) (int64, error) {
	var n int64
	for {
		c, err := src.Next(ctx)
		if err == replica.ErrNoMoreChunks {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		f.chunks++
		f.maxSize = max(f.maxSize, c.Size()+int64(c.Rows())*rowOverhead)
		n += int64(c.Rows())
		src.Release(c)
		if f.failAfter > 0 && f.chunks == f.failAfter {
			return n, f.err
		}
	}
}

// copyChunks against a real COPY: every row arrives, chunks stay within a
// quarter of the budget (plus one row) for 50 kB rows, and a destination
// that fails stops the copy with its error instead of hanging.
func TestCopyChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE wide (id int, body text);
		INSERT INTO wide SELECT g, repeat(md5(g::text), 1600) FROM generate_series(1, 200) g`); err != nil {
		t.Fatal(err)
	}
	tbl := &replica.Table{SourceSchema: "public", SourceName: "wide", Columns: []replica.Column{
		{Name: "id", TypeOID: 23}, {Name: "body", TypeOID: 25},
	}}
	const budget = 1 << 20
	ok := &fakeChunkLoader{}
	n, err := copyChunks(ctx, conn, ok, tbl, 'r', 1, budget, nil, nil)
	if err != nil || n != 200 {
		t.Fatalf("copyChunks = %d, %v; want 200 rows", n, err)
	}
	if limit := int64(budget/snapshotChunks + 51200 + 2*rowOverhead); ok.maxSize > limit {
		t.Errorf("largest chunk %d bytes, over %d", ok.maxSize, limit)
	}
	if ok.chunks < 30 {
		t.Errorf("%d chunks for 10 MB in 1 MB of budget", ok.chunks)
	}

	boom := errors.New("destination failed")
	_, err = copyChunks(ctx, conn, &fakeChunkLoader{failAfter: 2, err: boom}, tbl, 'r', 1, budget, nil, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("copyChunks = %v, want the destination's error", err)
	}
}
