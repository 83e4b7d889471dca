package replicator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/copytext"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// snapshotChunk is how many rows are handed to the destination at a time
// during a snapshot; with the byte bound, it bounds the snapshot's memory.
const snapshotChunk = 10000

// rowOverhead is what a row costs in memory besides its values: the Row
// and its slice headers, counted so that many tiny rows are bounded too.
const rowOverhead = 64

// copyTable copies one table's rows, as seen by the transaction open on
// conn, into the destination. It reads with COPY ... TO STDOUT in text
// format: the same output functions pgoutput uses, so snapshot and stream
// values agree byte for byte.
func copyTable(ctx context.Context, conn *pgx.Conn, tx replica.Tx, t *replica.Table, kind byte, estimate float64, lsn uint64, maxBytes int64, heap *heapWatch, progress func(string), observe func(rows int64, done bool)) (int64, error) {
	report := func(n int64) {
		if observe != nil {
			observe(n, false)
		}
		if progress == nil {
			return
		}
		pct := ""
		if estimate > 0 {
			p := float64(n) / estimate * 100
			if p > 100 {
				p = 100
			}
			pct = fmt.Sprintf(" (%.0f%% of about %.0f)", p, estimate)
		}
		progress(fmt.Sprintf("snapshot %s: %d rows copied%s", t.QualifiedSource(), n, pct))
	}
	var n int64
	var err error
	if cl, ok := tx.(replica.CopyLoader); ok && cl.CopyFormat(t) != "" {
		n, err = copyDirect(ctx, conn, cl, t, kind, cl.CopyFormat(t), lsn, report)
	} else if cl, ok := tx.(replica.ChunkLoader); ok && len(t.Columns) > 0 {
		n, err = copyChunks(ctx, conn, cl, t, kind, lsn, maxBytes, heap, report)
	} else {
		n, err = copyRowsWith(ctx, conn, t, kind, maxBytes, func(rows []replica.Row) error {
			err := tx.Load(ctx, t, rows, lsn)
			heap.observe()
			return err
		}, report)
	}
	if observe != nil {
		observe(n, true)
	}
	return n, err
}

// copySQL is the COPY that reads t's columns from the source table.
func copySQL(t *replica.Table, kind byte, options string) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = ident(c.Name)
	}
	only := "ONLY "
	if kind == 'p' {
		only = "" // a partitioned table's rows live in its partitions
	}
	return fmt.Sprintf("COPY (SELECT %s FROM %s%s) TO STDOUT%s", strings.Join(cols, ", "), only, ident(t.SourceSchema, t.SourceName), options)
}

// copyDirect pipes the source's COPY output into the destination's COPY
// input: the bytes are never decoded, and memory holds one message at a
// time. Rows are counted from the data for progress.
func copyDirect(ctx context.Context, conn *pgx.Conn, cl replica.CopyLoader, t *replica.Table, kind byte, format string, lsn uint64, progress func(int64)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	counter := &copyCounter{w: pw, binary: format == "binary", progress: progress, lastNote: time.Now()}
	done := make(chan error, 1)
	go func() {
		_, err := conn.PgConn().CopyTo(ctx, counter, copySQL(t, kind, " (FORMAT "+format+")"))
		if err != nil {
			err = sourceError("copying "+t.QualifiedSource(), err)
		}
		pw.CloseWithError(err)
		done <- err
	}()
	n, err := cl.LoadCopy(ctx, t, lsn, pr)
	// Unblocks the source's side if the destination stopped early.
	pr.CloseWithError(io.ErrClosedPipe)
	rerr := <-done
	switch {
	case rerr != nil && !errors.Is(rerr, io.ErrClosedPipe):
		return n, rerr // the source failed first; the destination saw it end
	case err != nil:
		return n, err
	case rerr != nil:
		return n, rerr
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// copyCounter passes COPY data through and counts its rows, for progress
// notes: newlines in text format, tuple headers in binary format (which
// pgconn hands over one CopyData message, and so one tuple, at a time
// after the header).
type copyCounter struct {
	w        io.Writer
	binary   bool
	header   bool
	rows     int64
	progress func(int64)
	lastNote time.Time
}

func (c *copyCounter) Write(p []byte) (int, error) {
	switch {
	case !c.binary:
		c.rows += int64(bytes.Count(p, []byte{'\n'}))
	case !c.header:
		// The 19-byte header (signature, flags, extension length) comes
		// with the first tuple, or with the trailer of an empty table.
		c.header = true
		if len(p) > 20 && !(p[19] == 0xff && p[20] == 0xff) {
			c.rows++
		}
	case len(p) >= 2 && !(p[0] == 0xff && p[1] == 0xff):
		c.rows++ // a tuple; 0xffff is the trailer
	}
	if c.progress != nil && time.Since(c.lastNote) > time.Second {
		c.lastNote = time.Now()
		c.progress(c.rows)
	}
	return c.w.Write(p)
}

// copyRows reads t's columns from the source table in chunks of at most
// snapshotChunk rows and maxBytes of values.
func copyRows(ctx context.Context, conn *pgx.Conn, t *replica.Table, kind byte, maxBytes int64, flush func([]replica.Row) error) (int64, error) {
	return copyRowsWith(ctx, conn, t, kind, maxBytes, flush, nil)
}

func copyRowsWith(ctx context.Context, conn *pgx.Conn, t *replica.Table, kind byte, maxBytes int64, flush func([]replica.Row) error, progress func(int64)) (int64, error) {
	q := copySQL(t, kind, "")
	w := &copyReader{ncols: len(t.Columns), maxBytes: maxBytes, flush: flush, progress: progress}
	if _, err := conn.PgConn().CopyTo(ctx, w, q); err != nil {
		if w.lines.err != nil {
			return w.rows, w.lines.err
		}
		return w.rows, sourceError("copying "+t.QualifiedSource(), err)
	}
	if w.lines.err != nil {
		return w.rows, w.lines.err
	}
	if err := w.finish(); err != nil {
		return w.rows, err
	}
	return w.rows, nil
}

// copyReader decodes COPY text format as pgconn hands it over.
type copyReader struct {
	ncols    int
	maxBytes int64
	lines    copyLines
	pending  []replica.Row
	bytes    int64 // held in pending
	rows     int64
	flush    func([]replica.Row) error
	progress func(int64)
	lastNote time.Time
	noted    int64
}

func (c *copyReader) Write(p []byte) (int, error) { return c.lines.write(p, c.line) }

// line decodes one COPY line into a row, and sends the rows on when they
// fill a chunk.
func (c *copyReader) line(line []byte) error {
	row, err := decodeCopyLine(line, c.ncols)
	if err != nil {
		return err
	}
	c.pending = append(c.pending, row)
	c.bytes += int64(len(line)) + rowOverhead
	c.rows++
	if len(c.pending) >= snapshotChunk || c.bytes >= c.maxBytes {
		return c.emit()
	}
	return nil
}

// copyLines cuts COPY's output, which arrives in writes of any size, into
// whole lines. After an error from line it takes no more.
type copyLines struct {
	partial []byte // the start of a line the next write completes
	err     error
}

func (l *copyLines) write(p []byte, line func([]byte) error) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	data := p
	if len(l.partial) > 0 {
		l.partial = append(l.partial, p...)
		data = l.partial
	}
	for {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		if err := line(data[:nl]); err != nil {
			l.err = err
			return 0, err
		}
		data = data[nl+1:]
	}
	l.partial = append(l.partial[:0], data...)
	return len(p), nil
}

func (c *copyReader) emit() error {
	if len(c.pending) == 0 {
		return nil
	}
	if err := c.flush(c.pending); err != nil {
		return err
	}
	// A new slice, not pending[:0]: the old one pins every row it held
	// until it is overwritten.
	c.pending, c.bytes = nil, 0
	if c.progress != nil && time.Since(c.lastNote) > time.Second {
		c.lastNote = time.Now()
		c.noted = c.rows
		c.progress(c.rows)
	}
	return nil
}

func (c *copyReader) finish() error {
	if len(c.lines.partial) > 0 {
		return fmt.Errorf("snapshot: COPY data ended inside a row")
	}
	if err := c.emit(); err != nil {
		return err
	}
	if c.progress != nil && c.noted != c.rows {
		c.progress(c.rows)
	}
	return nil
}

// decodeCopyLine splits one COPY text line into values, undoing the
// backslash escapes. \N alone is NULL.
func decodeCopyLine(line []byte, ncols int) (replica.Row, error) {
	vals := make([][]byte, 0, ncols)
	for _, field := range bytes.Split(line, []byte{'\t'}) {
		if len(field) == 2 && field[0] == '\\' && field[1] == 'N' {
			vals = append(vals, nil)
			continue
		}
		if bytes.IndexByte(field, '\\') < 0 {
			vals = append(vals, append(make([]byte, 0, len(field)), field...))
			continue
		}
		vals = append(vals, copytext.AppendUnescaped(make([]byte, 0, len(field)), field))
	}
	if len(vals) != ncols {
		return replica.Row{}, fmt.Errorf("snapshot: COPY row has %d fields, expected %d", len(vals), ncols)
	}
	return replica.Row{Values: vals}, nil
}
