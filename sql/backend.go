package sql

import "context"

// Backend runs client SQL on the destination, so the session that calls
// replicate() can query the replica. A destination that serves queries
// with its own dialect emulation implements it.
type Backend interface {
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

// CopyOutRows is Rows whose rows go to the client as COPY TO STDOUT data.
type CopyOutRows interface {
	Rows
	// CopyOut says what is copied: the columns and the format.
	CopyOut() CopySpec
}

// CopyInRows is the target of a COPY FROM STDIN: the front end decodes
// the client's data and hands it over row by row.
type CopyInRows interface {
	Rows
	CopyIn() CopySpec
	// Put takes one row, one Go value per column (nil for NULL).
	Put(ctx context.Context, row []any) error
	// End ends the copy: err is nil when every row was put, else why the
	// copy failed, and then what was put is undone. After End(nil)
	// returns nil, Tag is "COPY n".
	End(ctx context.Context, err error) error
}

// CopySpec describes one COPY's data.
type CopySpec struct {
	// Table names the copy in error context.
	Table   string
	Columns []Field
	Options CopyOptions
}
