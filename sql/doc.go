// Package sql is pgcdc's SQL surface: it decides whether a client statement
// calls one of pgcdc's functions or passes through to the destination, and
// evaluates a call's arguments.
//
// The functions are declared once, in catalog.sql, as Postgres CREATE
// FUNCTION statements that LoadCatalog reads with the real Postgres parser
// (pg_query). Argument checking, the result row shape and the reference docs
// (Catalog.Docs) all come from that declaration.
//
// Catalog.Classify looks at one statement. A cheap scan for the function
// names lets ordinary traffic through without a parse; a statement that does
// mention a name is parsed, and it is a Call only in the shapes
// SELECT f(...), SELECT * FROM f(...) and SELECT col, ... FROM f(...). Any
// other use of our names is an error with a SQLSTATE rather than a silent
// passthrough, since the destination would fail on it less clearly.
// Call.ParamOIDs and Call.Bind serve the extended query protocol: Parse
// learns the $n types, Bind evaluates the arguments with Postgres' rules
// (positional and named arguments, casts, ARRAY[...], array and JSON text)
// into Args of plain Go values. Split cuts a multi-statement query string.
//
// Catalog.ClassifyAny also takes the statements that use our functions'
// rows (embed.go): a call that is a FROM item of the statement, of a WITH
// query, of a set operation's arm or of a derived table, where it runs
// exactly once, in a SELECT or an INSERT ... SELECT. An Embedded knows its
// calls, and Rewrite puts each call's rows in its place, as a typed VALUES
// list on the parse tree, and renumbers the $n left for the destination. A
// call anywhere its evaluation count would be up to the query plan is 0A000.
// Classify, which the Postgres proxy uses, keeps to the simple shapes.
//
// ParseCopy (copy.go) reads COPY ... TO STDOUT and COPY ... FROM STDIN and
// their options, checked as Postgres checks them, for a destination that
// runs them in the COPY sub-protocol (Backend's CopyOutRows and
// CopyInRows).
//
// The package knows nothing of the wire protocol (it receives query text and
// decoded parameter values and returns *pgconn.PgError) and nothing of
// replication (what a function does with its Args belongs to functions/).
package sql
