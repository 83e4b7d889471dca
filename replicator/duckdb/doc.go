// Package duckdb is the DuckDB destination: an embedded DuckDB file that
// holds the replicated tables and the replication state, and serves client
// queries.
//
// Changes are loaded in bulk. A transaction appends each batch of a keyed
// table, as text columns, to a staging table of its own (merge.go), and
// merges what it staged once: at commit, before anything else touches the
// table, or when 64MB are staged. The merge keeps each key's last change,
// casts it, and replaces the key's row with a few set-based statements, so
// DuckDB scans the table once per merge rather than once per batch.
// Batches that need the current rows (unchanged TOAST values, soft
// deletes) and tables without a merge key are merged at once, read through
// a table function (stage.go). DuckDB's own casts parse Postgres's text
// output, so values are converted in C++ rather than row by row in Go.
//
// A snapshot table is loaded with one INSERT ... SELECT from pgcdc_load
// (load.go), a parallel table function that DuckDB's threads pull chunks
// of COPY text through while the engine reads the next ones. Integers,
// booleans, floats, numeric(p<=38,s), timestamps, dates, uuids and bytea
// are parsed in Go and handed over typed (load_parse.go; timestamps and
// dates as microseconds and days, made DuckDB's types in SQL so that
// infinity keeps its meaning), sparing a string per value and DuckDB's
// cast of it; every other column goes through the same casts as batches.
//
// The package knows Postgres type OIDs (to map types) but nothing of the
// replication protocol or the wire protocol.
//
// # Files
//
//	duckdb.go     Open, the Destination, the engine's write transaction
//	state.go      the replication state in schema _pgcdc
//	apply.go      applying a batch; merge.go, staging batches and merging
//	              them; stage.go, the table function batches are read
//	              through; types.go, Postgres types to DuckDB's
//	load.go       loading a snapshot table from chunks (replica.ChunkLoader);
//	              load_parse.go, the values it parses in Go
//	session.go    client sessions: connections, transaction status
//	statement.go  preparing and running one client statement, its rows
//	              and command tag
//	copy.go       COPY ... TO STDOUT and FROM STDIN, for the COPY protocol
//	policy.go     what a client statement may do, and why
//	values.go     DuckDB result types and values in Postgres terms
//	semantics.go  Postgres semantics on the parse tree: column names,
//	              division, PREPARE's parameter types
//	errors.go     DuckDB errors with Postgres SQLSTATEs
//	pgcatalog.go  the Postgres catalog client sessions see (pgcatalog.sql,
//	              views and macros in the attached _pgcdc_catalog), with
//	              source column types from _pgcdc.columns (tables.go)
//	rewrite.go    client statements' catalog references and Postgres
//	              spellings, rewritten on the parse tree
//
// # Connections
//
// One DuckDB database, two kinds of connection. Open builds the database
// with a duckdb.Connector; the engine uses a database/sql pool over it
// (Destination.DB) for its write transactions and state reads. Each client
// session gets a driver connection of its own from the connector, used
// through the driver interfaces and closed (never pooled) when the session
// ends. So nothing a client does to its connection (SET, USE, an open or
// broken transaction, temporary objects, variables) reaches the engine or a
// later session.
//
// Every client statement is prepared with (*duckdb.Conn).Prepare, which
// takes exactly one statement and runs nothing. The driver's PrepareContext
// and QueryContext, which database/sql uses, run every statement but the
// last of a multi-statement text while "preparing" it; text the router
// could not split ("SELECT 1a; BEGIN", which the Postgres scanner rejects)
// would otherwise run unseen. Such text fails with 42601, as it does in
// Postgres's extended protocol.
//
// # Transaction status
//
// ReadyForQuery's status comes from DuckDB, asked only when a statement
// could have changed it: after COMMIT or ROLLBACK, and after an error. The
// question is two SELECT system.main.txid_current(): equal in a
// transaction, different in autocommit, an error in a transaction DuckDB
// invalidated. A successful BEGIN is not asked about, because any query
// would fix the transaction's snapshot at once instead of at the client's
// first statement (a client that calls replicate() in a block expects to
// see what it wrote). On top, Postgres's rule: an error inside a block, a
// refused statement or one of pgcdc's own functions failing included
// (Abort), fails the block. DuckDB's transaction is then rolled back at
// once, and the session reports 'E' and refuses everything (25P02) until
// the client ends the block, with ROLLBACK as the tag. BEGIN inside a block
// and COMMIT outside one are answered without DuckDB, as Postgres only
// warns about them; Postgres spellings DuckDB cannot parse (BEGIN ISOLATION
// LEVEL ...) run as DuckDB's plain BEGIN, except SERIALIZABLE, which
// snapshot isolation cannot give (0A000); savepoints, AND CHAIN and
// two-phase commit fail. Read-only blocks (BEGIN READ ONLY, SET
// TRANSACTION READ ONLY, default_transaction_read_only) refuse writes with
// 25006. DECLAREd cursors hold a materialised result until CLOSE or, without
// HOLD, the end of the block (statement.go).
//
// # What clients may not do
//
// DuckDB has no users or grants, so the protection is in two layers.
//
// The database: after the engine's own set-up, Open sets
// enable_external_access = false (no file, network or extension access for
// any connection; the engine needs none after Open) and lock_configuration
// = true (no global setting can change; DuckDB still lets a connection set
// its own search_path and schema). DuckDB's refusals reach the client as
// 42501 with a hint.
//
// The session (policy.go), before and after DuckDB prepares a statement:
//
//   - COPY to or from a file or program, and EXPORT DATABASE, are refused
//     (42501). DuckDB keeps the
//     database's own file, WAL and temporary directory reachable with
//     external access off, so all they could do is read or overwrite the
//     replica's storage (COPY ... TO 'replica.duckdb' (USE_TMP_FILE false)
//     destroys it). COPY is refused before DuckDB binds it, since binding
//     COPY FROM already reads the file.
//   - ATTACH, DETACH, USE, INSTALL, LOAD, UPDATE EXTENSIONS and COPY FROM
//     DATABASE are refused (42501): attached databases and extensions are
//     the whole server's.
//   - PRAGMA statements that act (enable_profiling,
//     disable_checkpoint_on_shutdown, ...) are refused: they bypass the
//     configuration lock. Informational ones become SELECTs and work.
//   - Calls of force_checkpoint (it aborts every other transaction,
//     replicate()'s too), enable_profiling and friends (DuckDB prints on
//     pgcdc's standard output), enable_logging, the PEG parser switches,
//     query() and json_execute_serialized_sql() (SQL built at run time,
//     which no check of the text can see) and arrow_scan (raw pointers) are
//     refused wherever they appear, quoted or qualified; FORCE CHECKPOINT
//     too.
//   - CREATE MACRO, FUNCTION or TYPE with the name of a built-in (lower,
//     string_split, json, pgcdc_stage, pgcdc_load, ...) is refused: DuckDB resolves the
//     name to the new object in every connection whose search path reaches
//     it, and the engine's SQL calls built-ins unqualified.
//   - EXPLAIN is judged by the statement it explains, since EXPLAIN ANALYZE
//     runs it; EXPLAIN of SET or transaction control is refused (0A000).
//   - COPY ... TO STDOUT and COPY ... FROM STDIN never reach DuckDB, which
//     would use pgcdc's own standard output and input: copy.go runs them in
//     the COPY sub-protocol, COPY TO as the equivalent SELECT (policy
//     included), COPY FROM as multi-row INSERTs into a table of the
//     client's, in a transaction of its own outside a block. COPY FROM into
//     a replicated table (one _pgcdc.tables lists) or into _pgcdc is
//     refused (42501). EXPLAIN of either is refused (0A000).
//   - Schema _pgcdc, the replication state, is read-only: a statement whose
//     text mentions _pgcdc, in any case, anywhere (strings and comments
//     included), must be of DuckDB's type SELECT (for EXPLAIN, the
//     explained statement's), else 42501 "permission denied for schema
//     _pgcdc". Identifiers cannot be built at run time outside query(),
//     which is refused, and DuckDB rejects U& escapes, so a statement that
//     names the schema mentions it. Unqualified names are the other way in:
//     after every SET, the session's resolved search path
//     (current_schemas) is checked, whatever spelled it (a literal, an
//     expression, SET schema, USE), and put back with 42501 if it reaches
//     _pgcdc.
//
// The _pgcdc rule refuses some harmless statements: a statement that only
// mentions _pgcdc in a string or comment, CREATE TABLE ... AS SELECT from
// it, CREATE VIEW over it, COPY (SELECT ... FROM _pgcdc...) TO a file,
// PREPARE of a read, CALL pragma_table_info('_pgcdc.x'). Copy the rows
// with a SELECT instead. It relies on _pgcdc holding no sequence, since
// nextval() is a SELECT that writes and DuckDB folds a computed sequence
// name into a constant; TestStateSchemaHasNoSequences guards that.
//
// # The operator's opt-in
//
// UnsafeClientFileAccess (pgcdc serve --unsafe-allow-client-file-access)
// leaves external access and the configuration unlocked and lifts the
// COPY, EXPORT, ATTACH, DETACH, USE, INSTALL, LOAD, UPDATE EXTENSIONS and
// COPY FROM DATABASE refusals: every client can then read and write any file the
// pgcdc process can, attach databases, load extensions and change global
// settings, the engine's included. The other rules stay, and string
// literals naming pgcdc's own standard streams or terminal (/dev/stdout,
// /dev/fd/1, /proc/self/fd/0, ...) are refused. It is no sandbox: a
// client that can load an extension runs native code in pgcdc's process,
// one that can write files can write a script for IMPORT DATABASE, and one
// that can change settings can SET enable_profiling, which DuckDB prints on
// pgcdc's standard output. Neither _pgcdc nor pgcdc's standard streams are
// safe from such a client.
package duckdb
