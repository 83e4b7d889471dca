// Package duckdb is the DuckDB destination: an embedded DuckDB file that
// holds the replicated tables and the replication state, and serves client
// queries.
//
// Changes are loaded in bulk: each batch is appended with the DuckDB
// Appender into a staging table of text columns, then cast and merged with
// a few set-based statements. DuckDB's own casts parse Postgres's text
// output, so values are converted in C++ rather than row by row in Go.
//
// The package knows Postgres type OIDs (to map types) but nothing of the
// replication protocol or the wire protocol.
package duckdb
