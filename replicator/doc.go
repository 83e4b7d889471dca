// Package replicator is pgcdc's replication engine. It owns the source side
// of change data capture: publications and logical slots, the initial
// snapshot read inside the slot's exported snapshot, the pgoutput change
// stream, per-table batching, schema tracking and the replication state that
// makes every change land exactly once.
//
// Destinations sit behind the replica.Destination interface (package
// replicator/replica holds it with the domain types), one subpackage each
// (replicator/duckdb). The engine hands them typed tables and text-encoded
// rows; the destination decides how to store them.
//
// A replicate() call streams up to the source's WAL position when it
// starts; a continuous slot (continuous.go) runs the same reader and
// applier with a stop policy instead, in a goroutine per slot, registered
// in the Replicator and recorded in the destination's state so a restart
// resumes it. resync.go holds per-table failure and resync_table.
//
// Next to replication it answers the operator's questions: Verify
// (verify.go) compares a replica with its source at one consistent point,
// Check (check.go) is the preflight of Init, and Status (status.go) reports
// each slot and table with what this process observed (observe.go), which
// it also hands to an Observer such as the Prometheus exporter.
//
// The package knows nothing of the wire protocol or of SQL parsing: it is
// driven through Replicator's methods with already-typed options, and reports
// progress through a callback.
package replicator
