package replicator

import (
	"context"
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
	// Backfill sets columns cols of the rows whose keys rows hold; each row
	// has the key columns' values followed by the cols' values.
	Backfill(ctx context.Context, t *Table, cols []int, rows []Row) error
	// Load appends snapshot rows. lsn is stored in _pg_lsn.
	Load(ctx context.Context, t *Table, rows []Row, lsn uint64) error
	// Apply merges a batch of changes into t.
	Apply(ctx context.Context, t *Table, b *Batch) error
	// Truncate removes every row of t.
	Truncate(ctx context.Context, t *Table) error
	// DropTable drops t if it exists.
	DropTable(ctx context.Context, schema, name string) error
	// SaveState stores st, replacing the slot's previous state.
	SaveState(ctx context.Context, st State) error
	// DeleteState removes the slot's state.
	DeleteState(ctx context.Context, slot string) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// State is what the destination remembers of a slot, committed in the same
// transaction as the data it describes.
type State struct {
	Slot        string
	Publication string
	// LSN is the source position everything up to which is in the
	// destination: the end of the last applied transaction, or the end
	// position an idle replicate() reached.
	LSN uint64
	// Dataset is the destination schema chosen at init_replication, empty
	// when each table lands in a schema named after its source schema.
	Dataset        string
	Tables         []string // destination tables, schema-qualified
	LastReplicated time.Time
}

// Passthrough runs client SQL on the destination, so the session that calls
// replicate() can query the replica. A destination that serves queries
// implements it.
type Passthrough interface {
	OpenSession(ctx context.Context) (Session, error)
}

// Session is one client's connection to the destination. It is used by one
// goroutine at a time.
type Session interface {
	// Prepare prepares one statement and describes its parameters and result.
	Prepare(ctx context.Context, query string) (Prepared, error)
	// TxStatus is 'I' (idle), 'T' (in a transaction) or 'E' (in a failed one).
	TxStatus() byte
	Close() error
}

// Prepared is a prepared passthrough statement.
type Prepared interface {
	ParamOIDs() []uint32
	// Fields describes the rows; nil when the statement returns none.
	Fields() []Field
	// Query runs the statement. The rows hold Go values suited to each
	// field's Postgres type.
	Query(ctx context.Context, args []any) (Rows, error)
	Close() error
}

// Field is a result column in Postgres terms.
type Field struct {
	Name    string
	OID     uint32
	Size    int16
	TypeMod int32
}

// Rows is a cursor over a passthrough result.
type Rows interface {
	// Next returns the next row or io.EOF.
	Next(ctx context.Context) ([]any, error)
	// Tag is the command tag, valid after io.EOF.
	Tag() string
	Close() error
}
