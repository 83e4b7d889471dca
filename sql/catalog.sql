-- The pgcdc function catalog.
--
-- This file is the one declaration of the SQL functions pgcdc serves, written
-- like an extension's install script. pgcdc reads it at start-up with the
-- Postgres parser (sql.LoadCatalog): the parameter names, types and DEFAULTs
-- drive argument checking, the RETURNS TABLE columns describe the result rows,
-- and the comments become docs/functions.md. To add a function, declare it
-- here and implement it in functions/; nothing else lists parameters.
--
-- LANGUAGE internal AS '<name>' names the implementation. Parameter types are
-- limited to what the argument evaluator reads: text, text[], boolean,
-- integer, bigint and jsonb (a JSON object). Result columns may also be
-- pg_lsn, timestamptz and double precision.

CREATE FUNCTION pgcdc.init_replication(
    slot_name         text,
    pub_name          text,
    schema_name       text    DEFAULT 'public',
    table_names       text[]  DEFAULT NULL,
    publish           text    DEFAULT NULL,
    persist_snapshots boolean DEFAULT false,
    include_columns   jsonb   DEFAULT NULL,
    columns           jsonb   DEFAULT NULL,
    reset             boolean DEFAULT false,
    dataset_name      text    DEFAULT NULL,
    adopt             boolean DEFAULT false,
    write_disposition text    DEFAULT NULL
) RETURNS TABLE (
    table_name     text,
    snapshot_rows  bigint,
    consistent_lsn pg_lsn,
    slot_name      text,
    publication    text,
    dataset_name   text
) LANGUAGE internal AS 'init_replication';

COMMENT ON FUNCTION pgcdc.init_replication IS
'Sets up replication from the source: creates the logical replication slot
`slot_name` (pgoutput) and the publication `pub_name`, and optionally copies
the tables'' current contents into the destination.

The publication is created empty `WITH (publish = ...)` and the tables are
added to it: the tables in `table_names` (a single name is accepted as a
one-element list), or the whole schema `schema_name` as `TABLES IN SCHEMA`
when `table_names` is NULL. Running it again with new tables adds them (and
copies them, with `persist_snapshots`), and copies again a table whose
replica was dropped; `reset => true` drops and recreates the slot and the
publication.

Every argument is checked, and every conflict with what exists is found,
before anything is created. If a later step fails, whatever the call created
(slot, publication, tables added to a publication, state) is removed again.

- `publish`: the operations published, as in `CREATE PUBLICATION ... WITH (publish = ...)`.
  NULL keeps what an existing publication publishes, and gives a new one
  Postgres''s default, `insert, update, delete, truncate` (dlt leaves truncate
  out, which lets a TRUNCATE silently diverge the replica). An insert-only
  publication makes the destination tables append-only.
- `persist_snapshots`: copy each table into the destination, reading inside the
  snapshot exported when the slot was created, so the change stream starts
  exactly where the copy ends. Nothing is created in the source.
- `include_columns`: per-table column subsets, `{"orders": ["id", "total"]}`. On
  Postgres 15 and later, tables named in `table_names` are published with a
  column list, so the source does not even send the other columns.
- `columns`: per-table column type hints in dlt''s shape,
  `{"orders": {"total": {"data_type": "decimal"}}}`, with dlt''s keys
  `data_type`, `precision` (bits for bigint), `scale`, `timezone`, `nullable`,
  `primary_key`, `variant`, `name` and `description`; a hint without
  `data_type` refines the column''s own type.
- `dataset_name`: the destination schema the tables are written to. It cannot
  be pgcdc''s own schema or a name the destination reserves.
- `adopt`: take over a slot, publication or destination table that exists but
  that pgcdc did not create. Without it such objects are refused (42501):
  pgcdc consumes, alters and drops only what it created.

- `write_disposition`: what the replica keeps, in dlt''s terms. `merge` (the
  default for a new slot) keeps the current row of each key. `append` keeps
  every inserted row and nothing else: it needs an insert-only publication
  (a new one publishes `insert`), and is what such a publication always did.
  `scd2` keeps every version of every row with the period it was valid
  (`_pg_valid_from`, `_pg_valid_to`, NULL while current, and the LSNs
  `_pg_lsn` and `_pg_valid_to_lsn`); it needs every table to have a key
  and the publication to publish updates. Fixed for the slot: NULL keeps the
  stored one.

`dataset_name`, `include_columns`, `columns` and `write_disposition` are
stored with the slot and fixed for each table once it is replicated;
`replicate()` uses them.

Returns one row per table with the rows copied and the LSN at which the slot
became consistent.';

CREATE FUNCTION pgcdc.replicate(
    slot_name         text,
    pub_name          text,
    include_columns   jsonb   DEFAULT NULL,
    columns           jsonb   DEFAULT NULL,
    target_batch_size integer DEFAULT 1000,
    flush_slot        boolean DEFAULT true,
    dataset_name      text    DEFAULT NULL,
    delete_mode       text    DEFAULT 'hard'
) RETURNS TABLE (
    table_name text,
    inserts    bigint,
    updates    bigint,
    deletes    bigint,
    truncates  bigint,
    start_lsn  pg_lsn,
    end_lsn    pg_lsn
) LANGUAGE internal AS 'replicate';

COMMENT ON FUNCTION pgcdc.replicate IS
'Applies the changes waiting in slot `slot_name` to the destination and
returns when it has caught up to the source''s WAL position read when the call
started (the insert position, so that commits made with
`synchronous_commit = off` are included); changes made during the call wait
for the next call. An idle slot still advances, so the source can release WAL.

Changes are merged on each table''s primary key (or its replica identity
index; REPLICA IDENTITY FULL without a primary key matches on all columns).
Batches are committed at source transaction boundaries together with the LSN
they reach, so a call that fails or is cancelled loses nothing and applies
nothing twice: the next call resumes after the last committed batch. Progress
is reported as NOTICEs.

- `include_columns`, `columns`, `dataset_name`: default to what
  `init_replication` stored with the slot. Given here, they must agree with
  it: a different column set would silently drop columns, so it is an error
  that says how to change the setup.
- `target_batch_size`: changes per destination batch; bounds memory.
- `flush_slot`: confirm the slot up to what the destination has committed, which
  lets the source recycle WAL. With `false` the same changes are read again
  next time (and skipped, as they are already applied).
- `delete_mode`: `hard` removes deleted rows; `soft` keeps them with
  `_pg_deleted_ts` set to the commit time of the delete.

Before reading a change it checks that the stored state belongs to this
source (system identifier, timeline and database), that the slot was not
consumed by anyone else, and that no replica table was dropped; each is an
error, never a reason to skip changes. A source table renamed or moved to
another schema is followed by its OID: its replica table is renamed in the
same transaction as the change.

Returns one row per table that had changes, with the LSN range consumed.';

CREATE FUNCTION pgcdc.replication_status(
    slot_name    text    DEFAULT NULL,
    table_detail boolean DEFAULT false
) RETURNS TABLE (
    slot_name          text,
    publication        text,
    active             boolean,
    confirmed_lsn      pg_lsn,
    current_lsn        pg_lsn,
    lag_bytes          bigint,
    wal_status         text,
    last_replicated_at timestamptz,
    tables             text[],
    table_name         text,
    state              text,
    lag_seconds        double precision,
    last_commit_at     timestamptz,
    last_error         text,
    inserts            bigint,
    updates            bigint,
    deletes            bigint,
    truncates          bigint
) LANGUAGE internal AS 'replication_status';

COMMENT ON FUNCTION pgcdc.replication_status IS
'Reports the source''s pgoutput replication slots in the source database: one
row per slot, or only `slot_name` when given. With `table_detail => true` each
slot''s row is followed by one row per table the slot replicates, with the
table''s `state`, `last_error` and counts (`table_name` is set on those rows,
and NULL on the slot''s).
`publication`, `tables` and `last_replicated_at` come from the destination''s
state for slots that `init_replication` set up, and are NULL for others.

`lag_bytes` is the WAL the source retains for the slot (`current_lsn` minus
`confirmed_lsn`), and `wal_status` is the source''s view of that WAL
(`reserved`, `extended`, `unreserved` or `lost`). Watch them: a slot that is
never replicated keeps WAL on the source until its disk fills; `extended` and
`unreserved` say it is close to `max_slot_wal_keep_size`, and a `lost` slot
must be re-created with `init_replication(..., reset => true)`.

- `state`: `snapshotting` (init_replication is copying), `replicating` (a call
  is applying changes now), `streaming` (ready: each replicate() applies the
  waiting changes), `failed` (the last call failed, with `last_error`, or the
  slot lost WAL), or `unmanaged` (a slot pgcdc did not set up).
- `lag_seconds`: 0 when the slot has nothing waiting, otherwise the age of the
  latest point the replica is complete up to: the start of the last
  replicate() that caught up, or the source commit time of the last
  transaction applied, whichever is later.
- `last_commit_at`: the source commit time of the last transaction applied.
- `last_error`: the error of the last call on the slot, until one succeeds.
- `inserts`, `updates`, `deletes`, `truncates`: changes applied since pgcdc
  started: in total on the slot''s row, per table on the tables'' rows.

`last_commit_at`, `last_error`, the counts and `lag_seconds` are what this
pgcdc process saw since it started.';

CREATE FUNCTION pgcdc.drop_replication(
    slot_name   text,
    pub_name    text,
    drop_tables boolean DEFAULT false
) RETURNS TABLE (
    slot_name      text,
    publication    text,
    dropped_tables text[]
) LANGUAGE internal AS 'drop_replication';

COMMENT ON FUNCTION pgcdc.drop_replication IS
'Drops the slot `slot_name` and the publication `pub_name` on the source, which
releases the WAL the slot retained, and forgets their replication state.
With `drop_tables => true` the destination tables fed by them are dropped too;
by default the data stays queryable. It drops only what pgcdc created: a slot
or publication it has no state for is refused (42501), and a publication it
only read is left alone.';

CREATE FUNCTION pgcdc.verify_replication(
    slot_name   text,
    table_name  text DEFAULT NULL,
    delete_mode text DEFAULT 'hard'
) RETURNS TABLE (
    table_name     text,
    verdict        text,
    source_rows    bigint,
    replica_rows   bigint,
    differing_keys text[]
) LANGUAGE internal AS 'verify_replication';

COMMENT ON FUNCTION pgcdc.verify_replication IS
'Compares the replica of slot `slot_name` with the source, every table of the
slot or only `table_name` (as `table` or `schema.table`), and returns one row
per table: `verdict` is `equal` or `different`, with the row counts of both
sides and the first keys (up to 10) whose rows differ, are missing from the
replica, or exist only there.

Both sides are compared at one consistent point, so changes still in flight
are never reported: the source is read inside a snapshot exported by a
temporary logical slot, and the replica is first brought to exactly that
snapshot''s position, as `replicate()` would (with `delete_mode`, which must be
the one the slot is replicated with).

Each side is read once: rows are grouped into buckets by the md5 of their key,
and each bucket''s count and sum of row hashes are computed by the database,
so only bucket summaries travel. Only differing buckets are read row by row.
Columns with a type hint (`columns`) are not compared; soft-deleted rows are
left out of the replica''s side.';

CREATE FUNCTION pgcdc.check_replication(
    schema_name text   DEFAULT 'public',
    table_names text[] DEFAULT NULL,
    publish     text   DEFAULT NULL
) RETURNS TABLE (
    severity   text,
    check_name text,
    table_name text,
    detail     text,
    fix        text
) LANGUAGE internal AS 'check_replication';

COMMENT ON FUNCTION pgcdc.check_replication IS
'A preflight for `init_replication` with the same `schema_name`, `table_names`
and `publish`: it reads the source and reports what would fail or cost, one
row per finding, errors first, each with the fix. It creates nothing.

`severity` is `error` (init_replication or replicate() would fail, or the
source would refuse writes to a table), `warning` (it works, with a cost or a
surprise) or `info`. It checks:

- `wal_level` (must be `logical`), free `max_replication_slots` and
  `max_wal_senders`, and `max_slot_wal_keep_size` (unlimited lets a forgotten
  slot fill the disk);
- the login: REPLICATION (or RDS''s `rds_replication`), ownership of each table
  (to add it to a publication), superuser for a whole-schema publication, and
  SELECT on each table (for the snapshot);
- each table: no primary key or REPLICA IDENTITY NOTHING (its UPDATEs and
  DELETEs fail on the source once it is published), REPLICA IDENTITY FULL on a
  wide table, generated columns (not published before Postgres 18), and
  columns the destination stores as text;
- the snapshot''s size: rows (the planner''s estimate) and bytes per table, and
  in total (`check_name` `snapshot_size`, one row per table).';

CREATE FUNCTION pgcdc.start_replication(
    slot_name         text,
    pub_name          text,
    include_columns   jsonb   DEFAULT NULL,
    columns           jsonb   DEFAULT NULL,
    target_batch_size integer DEFAULT 1000,
    flush_slot        boolean DEFAULT true,
    dataset_name      text    DEFAULT NULL,
    delete_mode       text    DEFAULT 'hard'
) RETURNS TABLE (
    slot_name     text,
    state         text,
    committed_lsn pg_lsn,
    last_error    text
) LANGUAGE internal AS 'start_replication';

COMMENT ON FUNCTION pgcdc.start_replication IS
'Replicates slot `slot_name` continuously in the background until
`stop_replication`, with the same arguments and checks as `replicate()`.
Changes reach the replica within about a second: batches are committed at
source transaction boundaries, cut by size and by time (a quarter second),
each together with the LSN it reaches. The slot is confirmed up to what the
destination committed several times a second, and an idle slot still
advances, so the source releases WAL.

The slot is recorded as running in the destination''s state, so a restarted
`pgcdc serve` resumes it. A stream that fails (the source restarts, the
network drops) is retried with capped exponential backoff (0.5 s to 30 s);
the last error is kept and returned by these functions. On SIGTERM, pgcdc
drains continuous slots within `--shutdown-grace`.

While a slot runs continuously, `replicate()` on it does not read the slot:
it waits until the background replication has applied everything up to the
source''s WAL position read when the call started, and returns what was
applied meanwhile. `init_replication` and `drop_replication` refuse it
(55006) until it is stopped.

Returns the slot, its state (`running`) and the LSN the destination holds.';

CREATE FUNCTION pgcdc.stop_replication(
    slot_name text
) RETURNS TABLE (
    slot_name     text,
    state         text,
    committed_lsn pg_lsn,
    last_error    text
) LANGUAGE internal AS 'stop_replication';

COMMENT ON FUNCTION pgcdc.stop_replication IS
'Stops the continuous replication of `slot_name`: the stream ends at the next
source transaction boundary, commits what it holds and confirms the slot.
The slot is then driven by `replicate()` calls again, also after a restart.
Cancelling the call cancels the drain; nothing is lost, as uncommitted changes
are read again by the next call.';

CREATE FUNCTION pgcdc.pause_replication(
    slot_name text
) RETURNS TABLE (
    slot_name     text,
    state         text,
    committed_lsn pg_lsn,
    last_error    text
) LANGUAGE internal AS 'pause_replication';

COMMENT ON FUNCTION pgcdc.pause_replication IS
'Pauses a slot that replicates continuously: it drains like `stop_replication`,
but the slot stays continuous and paused, also across restarts, until
`resume_replication`. While paused, `replicate()` on it is refused (55000) and
the source retains the slot''s WAL.';

CREATE FUNCTION pgcdc.resume_replication(
    slot_name text
) RETURNS TABLE (
    slot_name     text,
    state         text,
    committed_lsn pg_lsn,
    last_error    text
) LANGUAGE internal AS 'resume_replication';

COMMENT ON FUNCTION pgcdc.resume_replication IS
'Resumes a slot paused by `pause_replication`, from where it stopped: the
background replication starts again at the replica''s position, and
`replicate()` on the slot waits for it again instead of being refused.';

CREATE FUNCTION pgcdc.resync_table(
    slot_name  text,
    table_name text
) RETURNS TABLE (
    table_name    text,
    snapshot_rows bigint,
    snapshot_lsn  pg_lsn
) LANGUAGE internal AS 'resync_table';

COMMENT ON FUNCTION pgcdc.resync_table IS
'Rebuilds the replica of one table of slot `slot_name` from a new snapshot,
exactly: no change is lost or applied twice. `table_name` is the source table,
`schema.name` or a name unique in the slot. It brings back a table that failed
(see `docs/continuous.md`), or repairs one that was changed in the destination.

A temporary slot exports a snapshot at its consistent point S, the table is
copied in it into a staging table next to the replica, and the staging table
replaces the replica in one destination transaction that records S with the
slot''s state: changes of transactions that commit before S are in the
snapshot and are skipped, later ones are applied on top. Until then the old
replica stays queryable and current.

On a continuous slot the other tables keep streaming during the copy; only when
the stream meets a change of this table newer than the snapshot does it wait
for the copy to finish. A slot driven by `replicate()` is busy during the call.
A crash or cancellation before the swap leaves the old replica table as it was.

Returns the destination table, the rows copied and S.';
