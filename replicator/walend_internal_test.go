package replicator

import "testing"

func TestPageStartIfEmpty(t *testing.T) {
	const block, segment = 8192, 16 << 20
	for _, c := range []struct{ lsn, want uint64 }{
		{0x5A2D4000 + 24, 0x5A2D4000},      // nothing after a short header yet
		{0x5A2D4000 + 32, 0x5A2D4000 + 32}, // a record crossing into the page ended 8 bytes past its header
		{0x5A2D4000 + 40, 0x5A2D4000 + 40}, // a short-header page: 40 is data
		{0x5B000000 + 40, 0x5B000000},      // a segment's first page has the long header
		{0x5B000000 + 24, 0x5B000000 + 24}, // inside the long header no record ends; left alone
		{0x5A2D4000 + 0x1000, 0x5A2D4000 + 0x1000},
		{0x5A2D4000, 0x5A2D4000},
	} {
		if got := pageStartIfEmpty(c.lsn, block, segment); got != c.want {
			t.Errorf("pageStartIfEmpty(%X) = %X, want %X", c.lsn, got, c.want)
		}
	}
}
