package replica

import (
	"context"
	"errors"
)

// Chunk is a run of rows in one buffer: every value of every row sits in
// Data, one after another, so a chunk costs a few allocations however many
// values it holds. The snapshot fills chunks from the source's COPY text
// and reuses them.
type Chunk struct {
	// NCols is the number of values in a row.
	NCols int
	// Data holds the values' bytes, in Postgres's text form.
	Data []byte
	// Ends[i] is where value i (row i/NCols, column i%NCols) ends in Data;
	// it starts where value i-1 ends. A NULL takes no bytes and has Null set.
	Ends []int
	Null []bool
}

// Rows is the number of rows in c.
func (c *Chunk) Rows() int {
	if c.NCols == 0 {
		return 0
	}
	return len(c.Ends) / c.NCols
}

// Value is the text of column col of row row, nil for NULL; it aliases
// Data.
func (c *Chunk) Value(row, col int) []byte {
	i := row*c.NCols + col
	if c.Null[i] {
		return nil
	}
	if c.Data == nil {
		return []byte{} // empty, not NULL: a chunk whose values so far are all ''
	}
	start := 0
	if i > 0 {
		start = c.Ends[i-1]
	}
	return c.Data[start:c.Ends[i]:c.Ends[i]]
}

// Reset empties c for reuse, keeping its buffers.
func (c *Chunk) Reset() {
	c.Data, c.Ends, c.Null = c.Data[:0], c.Ends[:0], c.Null[:0]
}

// Size is the memory c's values take, what a byte budget counts.
func (c *Chunk) Size() int64 {
	return int64(len(c.Data) + len(c.Ends)*9)
}

// ErrNoMoreChunks is what a ChunkSource returns after the last chunk.
var ErrNoMoreChunks = errors.New("no more chunks")

// ChunkSource hands out a table's snapshot one chunk at a time, to one or
// several loaders at once.
type ChunkSource interface {
	// Next returns the next chunk, or ErrNoMoreChunks after the last one.
	Next(ctx context.Context) (*Chunk, error)
	// Release hands back a chunk whose rows are loaded; the source reuses
	// its buffers.
	Release(c *Chunk)
}

// ChunkLoader is a Tx that loads a snapshot table from chunks of rows in
// one statement, while the engine reads the next chunks from the source:
// reading and loading overlap, and no row is decoded into a Row.
type ChunkLoader interface {
	// LoadChunks appends the rows of every chunk src hands out to t, with
	// _pg_lsn set to lsn, and returns the number of rows. An error from
	// src is returned as is.
	LoadChunks(ctx context.Context, t *Table, lsn uint64, src ChunkSource) (int64, error)
}
