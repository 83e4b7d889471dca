package replicator

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/copytext"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// snapshotChunks is how many chunks a table's snapshot holds at most: one
// being filled from the source, the others queued or being loaded by the
// destination's threads. Each holds a share of the byte budget, so the
// snapshot's rows never hold more than the budget (plus a row per chunk).
const snapshotChunks = 4

// minChunkBytes keeps chunks useful when the budget is tiny.
const minChunkBytes = 64 << 10

// copyChunks reads t's COPY text output on a goroutine into chunks and hands
// them to the destination, which loads them in one statement while the
// next are read: the source and the destination work at the same time.
func copyChunks(ctx context.Context, conn *pgx.Conn, cl replica.ChunkLoader, t *replica.Table, kind byte, lsn uint64, maxBytes int64, heap *heapWatch, progress func(int64)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	limit := max(maxBytes/snapshotChunks, minChunkBytes)
	free := make(chan *replica.Chunk, snapshotChunks)
	for range snapshotChunks {
		free <- &replica.Chunk{NCols: len(t.Columns)}
	}
	full := make(chan *replica.Chunk, snapshotChunks)
	w := &chunkWriter{ctx: ctx, ncols: len(t.Columns), limit: limit, free: free, full: full, heap: heap, progress: progress, lastNote: time.Now()}
	go func() {
		defer close(full)
		_, err := conn.PgConn().CopyTo(ctx, w, copySQL(t, kind, ""))
		switch {
		case w.lines.err != nil:
			err = w.lines.err
		case err != nil:
			err = sourceError("copying "+t.QualifiedSource(), err)
		default:
			err = w.finish()
		}
		w.done = err // read after full is closed
	}()
	n, err := cl.LoadChunks(ctx, t, lsn, &chunkQueue{w: w, full: full, free: free})
	if err != nil {
		// Stop the source's side and wait for it. A source error reached
		// the destination through Next, which LoadChunks returns as is.
		cancel()
		for range full {
		}
		return n, err
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// chunkQueue hands the chunks a chunkWriter fills to the destination.
type chunkQueue struct {
	w    *chunkWriter
	full <-chan *replica.Chunk
	free chan<- *replica.Chunk
}

func (q *chunkQueue) Next(ctx context.Context) (*replica.Chunk, error) {
	select {
	case c, ok := <-q.full:
		if !ok {
			if q.w.done != nil {
				return nil, q.w.done
			}
			return nil, replica.ErrNoMoreChunks
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *chunkQueue) Release(c *replica.Chunk) {
	c.Reset()
	q.free <- c // never blocks: free has room for every chunk
}

// chunkWriter decodes COPY text format, as pgconn hands it over, into
// chunks: every value of a chunk lands in one buffer, unescaped.
type chunkWriter struct {
	ctx      context.Context
	ncols    int
	limit    int64
	free     <-chan *replica.Chunk
	full     chan<- *replica.Chunk
	cur      *replica.Chunk
	lines    copyLines // whole lines; its err, the writer's own, stops the COPY
	rows     int64
	heap     *heapWatch
	progress func(int64)
	lastNote time.Time
	done     error // the outcome, set before full is closed
}

func (w *chunkWriter) Write(p []byte) (int, error) { return w.lines.write(p, w.line) }

// line appends one COPY line to the current chunk, and sends the chunk on
// when it is full.
func (w *chunkWriter) line(line []byte) error {
	if w.cur == nil {
		select {
		case w.cur = <-w.free:
		case <-w.ctx.Done():
			return w.ctx.Err()
		}
	}
	c := w.cur
	n := 0
	for {
		field := line
		tab := bytes.IndexByte(line, '\t')
		if tab >= 0 {
			field = line[:tab]
		}
		n++
		if n > w.ncols {
			break
		}
		if len(field) == 2 && field[0] == '\\' && field[1] == 'N' {
			c.Null = append(c.Null, true)
		} else {
			c.Null = append(c.Null, false)
			if bytes.IndexByte(field, '\\') < 0 {
				c.Data = append(c.Data, field...)
			} else {
				c.Data = copytext.AppendUnescaped(c.Data, field)
			}
		}
		c.Ends = append(c.Ends, len(c.Data))
		if tab < 0 {
			break
		}
		line = line[tab+1:]
	}
	if n != w.ncols {
		return fmt.Errorf("snapshot: COPY row has %d fields, expected %d", n, w.ncols)
	}
	w.rows++
	if c.Rows() >= snapshotChunk || c.Size()+int64(c.Rows())*rowOverhead >= w.limit {
		return w.send()
	}
	return nil
}

func (w *chunkWriter) send() error {
	if w.cur == nil {
		return nil
	}
	select {
	case w.full <- w.cur:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.cur = nil
	w.heap.observe()
	if w.progress != nil && time.Since(w.lastNote) > time.Second {
		w.lastNote = time.Now()
		w.progress(w.rows)
	}
	return nil
}

func (w *chunkWriter) finish() error {
	if len(w.lines.partial) > 0 {
		return fmt.Errorf("snapshot: COPY data ended inside a row")
	}
	return w.send()
}
