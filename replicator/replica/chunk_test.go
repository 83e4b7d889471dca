package replica_test

import (
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// An empty value is not NULL, even in a chunk that holds no bytes yet.
func TestChunkEmptyIsNotNull(t *testing.T) {
	c := &replica.Chunk{NCols: 2}
	c.Null = append(c.Null, false, true)
	c.Ends = append(c.Ends, 0, 0)
	if v := c.Value(0, 0); v == nil || len(v) != 0 {
		t.Fatalf("empty value = %#v, want empty and not nil", v)
	}
	if v := c.Value(0, 1); v != nil {
		t.Fatalf("NULL = %#v, want nil", v)
	}
	c.Data = append(c.Data, "ab"...)
	c.Null = append(c.Null, false, false)
	c.Ends = append(c.Ends, 1, 2)
	if c.Rows() != 2 || string(c.Value(1, 0)) != "a" || string(c.Value(1, 1)) != "b" {
		t.Fatalf("rows %d, values %q %q", c.Rows(), c.Value(1, 0), c.Value(1, 1))
	}
	c.Reset()
	if c.Rows() != 0 || c.Size() != 0 {
		t.Fatalf("after Reset: %d rows, %d bytes", c.Rows(), c.Size())
	}
}
