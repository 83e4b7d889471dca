package bench_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/duckdb"
)

// BenchmarkDrainInProcess runs the engine in the test process, so that
// go test -cpuprofile profiles it: replicate() of 200k updates in 100
// transactions into a DuckDB file.
func BenchmarkDrainInProcess(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn, src := setup(ctx, b, "bench_drain")
	defer src.Close(ctx)
	dest, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), "drain.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer dest.Close()
	repl := replicator.New(dsn, dest, zerolog.Nop())
	slot := fmt.Sprintf("drain%d", runs)
	if _, err := repl.Init(ctx, replicator.InitOptions{Slot: slot, Publication: slot + "_pub", Schema: "public", Tables: []string{"t"}, PersistSnapshots: true}); err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < 100; j++ {
			exec(ctx, b, src, fmt.Sprintf("UPDATE t SET amount = amount + 1, name = name || '.' WHERE id %% 100 = %d", j))
		}
		b.StartTimer()
		start := time.Now()
		if _, err := repl.Replicate(ctx, replicator.ReplicateOptions{Slot: slot, Publication: slot + "_pub", BatchSize: 1000, FlushSlot: true}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*rows)/elapsed.Seconds(), "changes/s")
}
