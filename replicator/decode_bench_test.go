package replicator

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// insertMessage encodes a pgoutput Insert of a pgbench_accounts-like row
// (aid int, bid int, abalance int, filler char(84)) as the walsender sends it.
func insertMessage(aid int) []byte {
	vals := [][]byte{
		[]byte(strconv.Itoa(aid)), []byte("1"), []byte("-4711"),
		[]byte("                                                                                    "),
	}
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, 16384)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// BenchmarkDecodeInsert is the reader's and applier's work per inserted
// row: pgoutput parsing, then the tuple's conversion to a destination row.
func BenchmarkDecodeInsert(b *testing.B) {
	msg := insertMessage(123456)
	rel := &relation{
		table: &replica.Table{Columns: make([]replica.Column, 4)},
		cols:  []int{0, 1, 2, 3},
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c, err := decodeChange(msg)
		if err != nil {
			b.Fatal(err)
		}
		r := rel.row(c.new)
		if len(r.Values) != 4 {
			b.Fatal("short row")
		}
	}
}
