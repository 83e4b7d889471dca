// Package replica is the contract between the replication engine and the
// destinations it writes to. It holds the domain types (tables and columns
// as the destination stores them, rows in the source's text form, batches of
// changes collapsed per key, the replication state of a slot) and the
// Destination and Tx interfaces every backend implements, one subpackage
// each beside the engine (replicator/duckdb).
//
// It also holds the rules every destination shares, so that backends differ
// only in how they store: which existing column a source column continues
// (MatchColumns, by the source attnum a backend records with each column),
// and which columns the source rewrote without WAL and must be backfilled
// (Rewritten).
//
// It knows nothing of the source, the stream, SQL or the wire: the engine
// (package replicator) reads the source and drives a Destination; backends
// import this package and nothing of the engine.
package replica
