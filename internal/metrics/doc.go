// Package metrics exports pgcdc's measurements to Prometheus. It owns the
// metric definitions (Metrics, which implements replicator.Observer for
// what the engine reports as it happens), a collector that reads each
// slot's position from replicator.Status at scrape time, and the HTTP
// listener that serves /metrics and /healthz on an address of its own.
//
// The engine calls the small replicator.Observer interface and knows
// nothing of Prometheus or HTTP; this package knows nothing of the wire
// protocol.
package metrics
