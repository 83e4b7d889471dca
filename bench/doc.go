// Package bench holds pgcdc's end-to-end benchmarks. They measure pgcdc
// against a baseline taken in the same run on the same source, because
// absolute times on a shared two-core machine mean little:
//
//   - snapshot: init_replication with persist_snapshots, against a plain
//     COPY ... TO STDOUT of the same table into io.Discard (the cost of just
//     reading the source);
//   - stream: replicate() of a batch of changes, against draining the same
//     changes from a second slot with pg_logical_slot_get_binary_changes
//     (the cost of just decoding them).
//
// BenchmarkFreshness (latency_test.go) has no baseline: it reports the
// change-to-replica latency of continuous mode (p50, p99, max in ms) under
// a light steady workload.
//
// Run them with: go test ./bench -run '^$' -bench . -benchtime 3x
//
// TestCeilings (ceilings_test.go) is the benchmark against the ceilings:
// snapshot, drain, peak memory and sustained rate, each against the
// fastest the source (or native logical replication) manages in the same
// run, every replica checked against the source by an ordered hash. It
// takes about 15 minutes, so it too runs only when asked:
//
//	go test ./bench -run TestCeilings -v -timeout 60m -ceilings
//
// TestProxyPgbench (proxy_test.go) measures the proxy in front of a
// Postgres destination: pgbench -S in the simple and the prepared protocol,
// directly and through pgcdc, alternating, as medians and ratios
// (docs/benchmarks.md). It takes minutes, so it runs only when asked:
//
//	go test ./bench -run TestProxyPgbench -v -timeout 30m -pgbench
package bench
