// Package functions connects the wire front end to the replication engine
// and the destination. Its Router is the wire.Handler: it asks sql/ whether
// a statement calls one of pgcdc's functions, runs those through the
// replicator, and passes every other statement to the destination.
//
// Each SQL function lives in its own file: it checks its typed arguments,
// calls the replicator, and turns the result into rows. Long calls report
// progress as NOTICEs and stop when their context is cancelled.
package functions
