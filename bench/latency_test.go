package bench_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// BenchmarkFreshness measures change-to-replica latency in continuous mode
// (start_replication) under a light steady workload: 20 single-row
// transactions a second for 10 seconds per iteration. Each row's latency is
// from its COMMIT returning to the source's client until a client of pgcdc
// polling the replica every 5 ms sees it; both clocks are this process's.
// It reports the p50, p99 and max in milliseconds.
func BenchmarkFreshness(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runs++
	name := fmt.Sprintf("freshness_%d", runs)
	if err := source.CreateDatabase(ctx, name); err != nil {
		b.Fatal(err)
	}
	dsn := source.DSN(name)
	src, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close(context.Background())
	exec(ctx, b, src, `CREATE TABLE ev (id bigint PRIMARY KEY, pad text)`)
	srv := pgcdctest.Start(b, pgcdctest.Options{Source: dsn})
	pg := srv.Connect(ctx, b)
	// Slot names are the cluster's: the testing package runs this once per
	// b.N it tries.
	exec(ctx, b, pg, fmt.Sprintf(`SELECT * FROM init_replication('%s', 'fr_pub', table_names => 'ev', persist_snapshots => true)`, name))
	exec(ctx, b, pg, fmt.Sprintf(`SELECT * FROM start_replication('%s', 'fr_pub')`, name))

	const rate, seconds = 20, 10
	var latencies []time.Duration
	next := int64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var mu sync.Mutex
		committed := map[int64]time.Time{}
		done := make(chan struct{})
		seen := make(chan []time.Duration, 1)
		first, last := next+1, next+rate*seconds
		go func() {
			var out []time.Duration
			poll := srv.Connect(ctx, b)
			defer poll.Close(context.Background())
			upto := first - 1
			for upto < last {
				var m *int64
				if err := poll.QueryRow(ctx, "SELECT max(id) FROM ev").Scan(&m); err != nil {
					b.Error(err)
					break
				}
				now := time.Now()
				if m != nil && *m > upto {
					mu.Lock()
					for id := upto + 1; id <= *m; id++ {
						// Seen before the client recorded its commit: 0.
						var d time.Duration
						if at, ok := committed[id]; ok {
							d = now.Sub(at)
						}
						out = append(out, d)
					}
					mu.Unlock()
					upto = *m
				}
				time.Sleep(5 * time.Millisecond)
			}
			seen <- out
			close(done)
		}()
		tick := time.NewTicker(time.Second / rate)
		for id := first; id <= last; id++ {
			<-tick.C
			if _, err := src.Exec(ctx, "INSERT INTO ev VALUES ($1, repeat('x', 100))", id); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			committed[id] = time.Now()
			mu.Unlock()
		}
		tick.Stop()
		next = last
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatal("the replica did not catch up within a minute")
		}
		latencies = append(latencies, <-seen...)
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(len(latencies)), "changes")
}
