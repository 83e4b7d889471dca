// Package postgres is the Postgres destination: a Postgres database (or a
// Postgres-compatible engine such as Citus) that holds the replicated tables
// with their source types, and pgcdc's replication state in schema _pgcdc.
//
// It implements replica.Destination. Client sessions do not go through it:
// over a Postgres destination pgcdc is a transparent proxy, and clients talk
// to the destination itself.
package postgres
