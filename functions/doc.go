// Package functions connects the wire front end to the replication engine
// and the destination. Its Router is the wire.Handler: it asks sql/ whether
// a statement calls one of pgcdc's functions, runs those through the
// replicator, and passes every other statement to the destination.
//
// Each SQL function lives in its own file: it checks its typed arguments,
// calls the replicator, and turns the result into rows. Long calls report
// progress as NOTICEs and stop when their context is cancelled.
//
// A statement that uses our functions' rows in a larger query (SELECT
// count(*) FROM replicate(...), a join, a CTE, INSERT ... SELECT) is an
// embeddedStatement: Parse describes it by preparing it on the destination
// with empty rows in place of the calls; Execute runs the calls, each once,
// and then the statement with their rows (sql.Embedded). A destination's
// COPY to or from the client (sql.CopyOutRows, sql.CopyInRows) is handed to
// the wire layer's COPY sub-protocol (wire.CopyOutResult, wire.CopyInResult).
//
// The session also answers the Postgres session commands that client
// libraries send and the destination does not understand (compat.go): SET
// and SHOW of Postgres settings such as extra_float_digits (pgJDBC, on
// connect), application_name and DateStyle, and SELECT version(). Any
// failed statement, one of ours included, aborts an open transaction block,
// so ReadyForQuery tells clients the truth. That emulation is for DuckDB.
//
// Over a Postgres destination the Proxy is the wire.Forwarder instead: each
// client session is forwarded, message by message, to a session of its own
// on the destination, and Intercept picks out the calls of our functions
// (proxy.go). DeclareFunctions declares the catalog in the destination, so
// that clients can list the functions there.
package functions
