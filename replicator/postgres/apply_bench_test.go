package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/postgres"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// drainTable is the shape of the ceilings benchmark's drain table
// (bench/ceilings_test.go): a bigint key and four other columns.
func drainTable() *replica.Table {
	return &replica.Table{OID: 1, SourceSchema: "public", SourceName: "drain_t", Schema: "public", Name: "drain_t", HasDeletedTS: true,
		Columns: []replica.Column{
			{Name: "id", TypeOID: 20, TypeName: "bigint", TypeSQL: "bigint", Key: true, Num: 1},
			{Name: "k", TypeOID: 23, TypeName: "integer", TypeSQL: "integer", Num: 2},
			{Name: "v", TypeOID: 1700, TypeName: "numeric(12,2)", TypeSQL: "numeric(12,2)", TypeMod: 786438, Num: 3},
			{Name: "note", TypeOID: 25, TypeName: "text", TypeSQL: "text", Num: 4},
			{Name: "at", TypeOID: 1184, TypeName: "timestamp with time zone", TypeSQL: "timestamp with time zone", Num: 5},
		}}
}

// drainBatch is the drain's mix in one batch of n changes: 80% inserts of
// new keys, 15% updates of hot keys (the first 4000, as the benchmark's
// four sessions each update their first 1000), 5% deletes of earlier keys.
func drainBatch(tbl *replica.Table, first, n int, lsn *uint64) *replica.Batch {
	b := replica.NewBatch(tbl)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	row := func(id, k int) replica.Row {
		return replica.Row{Values: [][]byte{[]byte(strconv.Itoa(id)), []byte(strconv.Itoa(k)), []byte(strconv.Itoa(k) + ".50"),
			[]byte("row " + strconv.Itoa(id)), []byte(at.Add(time.Duration(id) * time.Second).Format("2006-01-02 15:04:05-07"))}}
	}
	for i := 0; i < n; i++ {
		*lsn++
		id := first + i*80/100
		switch {
		case i%20 == 19 && first > n:
			b.Delete(replica.Row{Values: [][]byte{[]byte(strconv.Itoa(first - n + i)), nil, nil, nil, nil}}, *lsn, at, false)
		case i%20 >= 16 && first > 0:
			b.Update(nil, row(1+(first+i*7919)%4000, i), *lsn, at)
		default:
			b.Insert(row(id, i), *lsn, at)
		}
	}
	return b
}

// BenchmarkApplyDrain applies the drain's mix, 100 batches of 1000 changes
// per destination transaction, as replicate() does with the defaults.
func BenchmarkApplyDrain(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := fmt.Sprintf("pgdest_bench_%d", dbSeq.Add(1))
	if err := destination.CreateDatabase(ctx, name); err != nil {
		b.Fatal(err)
	}
	dest, err := postgres.Open(ctx, destination.DSN(name))
	if err != nil {
		b.Fatal(err)
	}
	defer dest.Close()
	tbl := drainTable()
	tx, err := dest.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.EnsureTable(ctx, tbl); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	// The destination backend's CPU time is what the drain waits for; it
	// is measured apart from wall time, which other processes on a shared
	// machine stretch.
	watch, err := pgx.Connect(ctx, destination.DSN(name))
	if err != nil {
		b.Fatal(err)
	}
	defer watch.Close(context.Background())
	const batch, perTx = 1000, 100
	var lsn uint64
	var cpu time.Duration
	next := 1
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, err := dest.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var pid int
		if err := watch.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgcdc'
			AND state LIKE 'idle in transaction%'`, name).Scan(&pid); err != nil {
			b.Fatal(err)
		}
		before := backendCPU(b, pid)
		for j := 0; j < perTx; j++ {
			if err := tx.Apply(ctx, tbl, drainBatch(tbl, next, batch, &lsn)); err != nil {
				b.Fatal(err)
			}
			next += batch * 80 / 100
		}
		cpu += backendCPU(b, pid) - before
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch*perTx)/b.Elapsed().Seconds(), "changes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*batch*perTx), "dest-cpu-µs/change")
}

// backendCPU is a local server process's user and system CPU time, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func backendCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("the destination backend's CPU time is read from /proc: %v", err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
