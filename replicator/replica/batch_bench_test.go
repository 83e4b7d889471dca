package replica_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// BenchmarkBatchCollapse adds the drain workload's mix to a batch: inserts
// of new keys, updates of hot keys and deletes, collapsed per key. One op
// is one source change.
func BenchmarkBatchCollapse(b *testing.B) {
	tbl := &replica.Table{Columns: []replica.Column{
		{Name: "id", TypeOID: 20, Key: true}, {Name: "v", TypeOID: 25},
	}}
	const size = 1000
	rows := make([]replica.Row, size)
	for i := range rows {
		rows[i] = replica.Row{Values: [][]byte{[]byte(strconv.Itoa(i)), []byte("some value " + strconv.Itoa(i))}}
	}
	now := time.Now()
	b.ReportAllocs()
	var batch *replica.Batch
	for i := 0; b.Loop(); i++ {
		if i%size == 0 {
			batch = replica.NewBatch(tbl)
		}
		r := rows[i%size]
		switch i % 10 {
		case 7, 8: // update a hot key
			hot := rows[i%16]
			batch.Update(nil, hot, uint64(i), now)
		case 9:
			batch.Delete(rows[(i-9)%size], uint64(i), now, false)
		default:
			batch.Insert(r, uint64(i), now)
		}
	}
}
