package replica

import (
	"context"
	"errors"
	"io"
	"time"
)

// Destination stores replicated tables and the replication state. Every
// method that does I/O takes a context.
type Destination interface {
	// Begin opens a write transaction. A replicator holds at most one at a
	// time per slot.
	Begin(ctx context.Context) (Tx, error)
	// State returns the stored state of a slot; ok is false when there is none.
	State(ctx context.Context, slot string) (st State, ok bool, err error)
	// States returns the state of every slot.
	States(ctx context.Context) ([]State, error)
	// CheckSchemaName refuses a destination schema the replica must not
	// write to: the destination's own schemas and names it reserves.
	CheckSchemaName(name string) error
	// CheckTable refuses a table the destination cannot store as asked (a
	// column hint beyond its limits), before anything is created.
	CheckTable(t *Table) error
	// Close releases the destination.
	Close() error
}

// Tx is one destination transaction. The data of a batch and the LSN it
// reaches are committed together, which is what makes changes land exactly
// once.
type Tx interface {
	// EnsureTable creates the table, or brings an existing one in line with
	// t (columns renamed, dropped, added, retyped). It returns the columns
	// whose values in existing rows it could not derive: those the source
	// rewrote (a type change, a volatile default), which must be backfilled.
	EnsureTable(ctx context.Context, t *Table) (stale []string, err error)
	// TableExists reports whether the destination has the table.
	TableExists(ctx context.Context, schema, name string) (bool, error)
	// RenameTable moves a table to another name or schema, data and column
	// attnums included. The target must not exist.
	RenameTable(ctx context.Context, from, to TableName) error
	// Backfill sets columns cols of the rows whose keys rows hold; each row
	// has the key columns' values followed by the cols' values.
	Backfill(ctx context.Context, t *Table, cols []int, rows []Row) error
	// Load appends snapshot rows. lsn is stored in _pg_lsn.
	Load(ctx context.Context, t *Table, rows []Row, lsn uint64) error
	// Apply merges a batch of changes into t.
	Apply(ctx context.Context, t *Table, b *Batch) error
	// Truncate removes every row of t.
	Truncate(ctx context.Context, t *Table) error
	// DropTable drops the table and reports whether it existed.
	DropTable(ctx context.Context, schema, name string) (bool, error)
	// SaveState stores st, replacing the slot's previous state.
	SaveState(ctx context.Context, st State) error
	// SavePosition records that the slot's changes are applied up to lsn,
	// leaving the rest of its state as it is.
	SavePosition(ctx context.Context, slot string, lsn uint64, at time.Time) error
	// DeleteState removes the slot's state.
	DeleteState(ctx context.Context, slot string) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// HistoryTx is a Tx that keeps History tables. Apply on a History table
// closes and opens versions (each Change is the net effect of one source
// transaction on one key, LSN its commit LSN); a History table is never
// merged.
type HistoryTx interface {
	// CloseVersions ends every current version of t at a TRUNCATE in the
	// source transaction that commits at lsn and at: versions that
	// transaction opened itself are removed, the others get _pg_valid_to
	// at and _pg_valid_to_lsn lsn.
	CloseVersions(ctx context.Context, t *Table, lsn uint64, at time.Time) error
}

// Write dispositions: what a slot's tables keep (init_replication's
// write_disposition, dlt's term).
const (
	// DispositionMerge keeps one row per key, the current one (the
	// default).
	DispositionMerge = "merge"
	// DispositionAppend keeps every inserted row: the publication
	// publishes inserts only, so nothing is ever merged.
	DispositionAppend = "append"
	// DispositionSCD2 keeps every version of every row with the period it
	// was valid.
	DispositionSCD2 = "scd2"
)

// CopyLoader is a Tx that can load a snapshot straight from the source's
// COPY output, without the engine decoding it into rows: a destination that
// keeps the source's types and formats.
type CopyLoader interface {
	// CopyFormat is the COPY format ("binary", "text") in which the
	// destination takes t's rows as the source writes them, or "" when it
	// needs rows.
	CopyFormat(t *Table) string
	// LoadCopy loads COPY data of t's columns, in that format, into t with
	// _pg_lsn set to lsn, and returns the number of rows.
	LoadCopy(ctx context.Context, t *Table, lsn uint64, data io.Reader) (int64, error)
}

// TableError is a destination's failure to write one table's changes. A
// destination that defers writing what Apply hands it reports the failure
// from a later call, Commit included, and names the table with it.
type TableError struct {
	Table *Table
	Err   error
}

func (e *TableError) Error() string { return e.Err.Error() }
func (e *TableError) Unwrap() error { return e.Err }

// ErrReservedSchema is wrapped by CheckSchemaName's errors.
var ErrReservedSchema = errors.New("reserved schema")

// TableName is a schema-qualified table name, kept as two parts: names may
// hold dots.
type TableName struct {
	Schema, Name string
}

// String is schema.name, unquoted, for messages.
func (n TableName) String() string { return n.Schema + "." + n.Name }

// SourceIdentity names the source a stored position belongs to. LSNs are only
// comparable within one system, timeline and database.
type SourceIdentity struct {
	SystemID string // pg_control's system identifier, as IDENTIFY_SYSTEM prints it
	Timeline int32
	Database string
}

// Known reports whether the identity was recorded (states written before
// identities were recorded have none).
func (id SourceIdentity) Known() bool { return id.SystemID != "" }

// State is what the destination remembers of a slot, committed in the same
// transaction as the data it describes.
type State struct {
	Slot        string
	Publication string
	// LSN is the source position everything up to which is in the
	// destination: the end of the last applied transaction, or the end
	// position an idle replicate() reached.
	LSN uint64
	// Source is the server the slot lives on.
	Source SourceIdentity
	// SlotLSN is where the slot became consistent when it was created.
	SlotLSN uint64
	// OwnsSlot and OwnsPublication say pgcdc created (or was told to adopt)
	// them, and so may consume and drop them.
	OwnsSlot, OwnsPublication bool
	// Ready is false from the moment init_replication records that it is
	// creating the slot until its snapshot commits.
	Ready bool
	// Publish is what the publication publishes, as init_replication set it.
	Publish string
	// Dataset is the destination schema chosen at init_replication, empty
	// when each table lands in a schema named after its source schema.
	Dataset string
	// WriteDisposition is Merge, Append or SCD2, as init_replication set
	// it; empty in states written before it was recorded, which is Merge.
	WriteDisposition string
	// Schemas are the source schemas published whole (TABLES IN SCHEMA):
	// tables that appear in them later join the replica on their own.
	Schemas        []string
	Tables         []TableState
	LastReplicated time.Time
	// Continuous is set while the slot replicates continuously
	// (start_replication), so that a restarted pgcdc resumes it; nil when
	// it is driven by replicate() calls.
	Continuous *Continuous
}

// Continuous is how a slot replicates in the background: the options it
// was started with, and whether it is paused.
type Continuous struct {
	Paused     bool `json:"paused"`
	BatchSize  int  `json:"target_batch_size"`
	FlushSlot  bool `json:"flush_slot"`
	SoftDelete bool `json:"soft_delete"`
}

// TableState is one replicated table: which source relation feeds which
// destination table, and the options init_replication fixed for it.
type TableState struct {
	// OID is the source relation's OID, which survives RENAME and SET
	// SCHEMA; 0 for tables recorded before OIDs were.
	OID    uint32
	Source TableName
	Dest   TableName
	// IncludeColumns keeps only these columns (the key is always kept); nil
	// keeps all.
	IncludeColumns []string
	// Hints override the destination type of columns, by column name.
	Hints map[string]TypeHint
	// Failed is why the table's changes could not be applied; while it is
	// set they are skipped, and resync_table brings the table back.
	Failed string
	// ResyncLSN is the position of the snapshot resync_table rebuilt the
	// table from: changes of transactions that commit before it are in the
	// snapshot, and are skipped.
	ResyncLSN uint64
}

// Table returns the slot's table fed by the relation with OID oid.
func (st *State) Table(oid uint32) *TableState {
	for i := range st.Tables {
		if st.Tables[i].OID == oid {
			return &st.Tables[i]
		}
	}
	return nil
}

// TableByDest returns the slot's table stored as dest.
func (st *State) TableByDest(dest TableName) *TableState {
	for i := range st.Tables {
		if st.Tables[i].Dest == dest {
			return &st.Tables[i]
		}
	}
	return nil
}
