package replicator

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Replicator runs init_replication and replicate against one source and one
// destination, and keeps slots replicating continuously. It is safe for
// concurrent use; calls on the same slot are serialized by failing fast,
// except replicate() on a continuous slot, which waits for it.
type Replicator struct {
	source string // connection string; holds a password, never logged
	dest   replica.Destination
	log    zerolog.Logger
	// BatchBytes bounds the row data held in memory at once, in snapshot
	// chunks and in change batches, whatever the row size; target_batch_size
	// bounds the number of rows. Set it before the first call.
	BatchBytes int64

	mu   sync.Mutex
	busy map[string]bool
	act  *activityLog // what this process saw, for status and metrics
	// pipes are the slots that replicate continuously (continuous.go).
	pipes map[string]*pipeline
}

// DefaultBatchBytes is the default of Replicator.BatchBytes.
const DefaultBatchBytes = 64 << 20

// New returns a Replicator. source is a libpq connection string or URL.
func New(source string, dest replica.Destination, log zerolog.Logger) *Replicator {
	return &Replicator{source: source, dest: dest, log: log, busy: map[string]bool{}, pipes: map[string]*pipeline{},
		BatchBytes: DefaultBatchBytes, act: newActivityLog()}
}

// acquire claims a slot for one call. A second call on the same slot fails
// at once instead of queueing behind a replicate() that may run for hours.
func (r *Replicator) acquire(slot string) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pipes[slot] != nil {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeObjectInUse,
			Message: fmt.Sprintf("replication slot %q replicates continuously in this pgcdc", slot),
			Hint:    fmt.Sprintf("Stop it first with stop_replication(%s).", quoteLiteral(slot))}
	}
	if r.busy[slot] {
		return nil, Errorf(CodeObjectInUse, "replication slot %q is being used by another call in this pgcdc", slot)
	}
	r.busy[slot] = true
	return func() {
		r.mu.Lock()
		delete(r.busy, slot)
		r.mu.Unlock()
	}, nil
}

// open claims the slot for one call and connects to the source; with check
// it also verifies the source can do logical replication. done releases
// both.
func (r *Replicator) open(ctx context.Context, slot string, check bool) (conn *pgx.Conn, done func(), err error) {
	release, err := r.acquire(slot)
	if err != nil {
		return nil, nil, err
	}
	if conn, err = r.connect(ctx); err != nil {
		release()
		return nil, nil, err
	}
	done = func() {
		conn.Close(context.Background())
		release()
	}
	if check {
		if err := checkSource(ctx, conn); err != nil {
			done()
			return nil, nil, err
		}
	}
	return conn, done, nil
}

// Postgres accepts only these characters in slot names.
var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func validateSlot(slot string) error {
	if !slotNameRE.MatchString(slot) {
		return Errorf(CodeInvalidName, "slot_name %q is invalid: use 1 to 63 lowercase letters, digits and underscores", slot)
	}
	return nil
}

func validateName(what, name string) error {
	if name == "" || len(name) > 63 {
		return Errorf(CodeInvalidName, "%s must be 1 to 63 bytes long, got %q", what, name)
	}
	if strings.ContainsRune(name, 0) {
		return Errorf(CodeInvalidName, "%s must not contain NUL", what)
	}
	return nil
}

// TableOptions are the per-table options of init_replication and
// replicate, keyed by source table name as the caller wrote it ("orders" or
// "shop.orders").
type TableOptions struct {
	// IncludeColumns keeps only these columns (the key is always kept).
	IncludeColumns map[string][]string
	// Hints override the destination type of a column.
	Hints map[string]map[string]replica.TypeHint
}

// given reports whether any option was passed.
func (o TableOptions) given() bool { return o.IncludeColumns != nil || o.Hints != nil }

// tableOptions are the options of one table.
type tableOptions struct {
	include      []string // nil: every column
	hints        map[string]replica.TypeHint
	givenInclude bool
	givenHints   bool
}

// resolve matches the options to tables and checks that every table and
// column they name exists. It returns the options of each table, by index.
func (o TableOptions) resolve(tables []*sourceTable, scope string) ([]tableOptions, error) {
	out := make([]tableOptions, len(tables))
	find := func(key string) int {
		for i, t := range tables {
			if key == t.Schema+"."+t.Name {
				return i
			}
		}
		for i, t := range tables {
			if key == t.Name {
				return i
			}
		}
		return -1
	}
	check := func(arg, key string, cols []string) (int, error) {
		i := find(key)
		if i < 0 {
			return -1, Errorf(CodeUndefinedTable, "%s names table %q, which is not replicated by %s", arg, key, scope)
		}
		t := tables[i]
		for _, c := range cols {
			found := false
			for _, tc := range t.Columns {
				found = found || tc.Name == c
			}
			if !found {
				return -1, Errorf(CodeUndefinedColumn, "%s: column %q does not exist in table %s.%s", arg, c, t.Schema, t.Name)
			}
		}
		return i, nil
	}
	for _, k := range slices.Sorted(maps.Keys(o.IncludeColumns)) {
		i, err := check("include_columns", k, o.IncludeColumns[k])
		if err != nil {
			return nil, err
		}
		if out[i].givenInclude {
			return nil, Errorf(CodeInvalidParameter, "include_columns names table %s.%s twice", tables[i].Schema, tables[i].Name)
		}
		out[i].include = append([]string{}, o.IncludeColumns[k]...)
		out[i].givenInclude = true
	}
	for _, k := range slices.Sorted(maps.Keys(o.Hints)) {
		i, err := check("columns", k, slices.Sorted(maps.Keys(o.Hints[k])))
		if err != nil {
			return nil, err
		}
		for _, c := range slices.Sorted(maps.Keys(o.Hints[k])) {
			if err := o.Hints[k][c].Validate(); err != nil {
				return nil, Errorf(CodeInvalidParameter, "%v", err)
			}
			for _, tc := range tables[i].Columns {
				if tc.Name != c {
					continue
				}
				if _, err := o.Hints[k][c].Refine(tc); err != nil {
					return nil, Errorf(CodeInvalidParameter, "%v", err)
				}
			}
		}
		if out[i].givenHints {
			return nil, Errorf(CodeInvalidParameter, "columns names table %s.%s twice", tables[i].Schema, tables[i].Name)
		}
		out[i].hints = maps.Clone(o.Hints[k])
		out[i].givenHints = true
	}
	return out, nil
}

// conflict compares options given in a call with the ones a slot stored for
// table t, and says how they differ; "" when they agree or none were given.
func (g tableOptions) conflict(t *replica.TableState) string {
	if g.givenInclude && !sameSet(g.include, t.IncludeColumns) {
		return fmt.Sprintf("include_columns for %s is %s, but the slot was set up with %s", t.Source, columnList(g.include), columnList(t.IncludeColumns))
	}
	if g.givenHints && !maps.EqualFunc(nilIfEmpty(g.hints), nilIfEmpty(t.Hints), replica.TypeHint.Equal) {
		return fmt.Sprintf("columns (type hints) for %s differ from the ones the slot was set up with (%s)", t.Source, hintList(t.Hints))
	}
	return ""
}

func sameSet(a, b []string) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func nilIfEmpty(m map[string]replica.TypeHint) map[string]replica.TypeHint {
	if len(m) == 0 {
		return nil
	}
	return m
}

func columnList(cols []string) string {
	if cols == nil {
		return "all columns"
	}
	return "[" + strings.Join(cols, ", ") + "]"
}

func hintList(h map[string]replica.TypeHint) string {
	if len(h) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(h)) {
		dt := h[c].DataType
		if dt == "" {
			dt = "(refined)"
		}
		parts = append(parts, c+": "+dt)
	}
	return strings.Join(parts, ", ")
}

// shapeColumns applies a table's options to its columns: drops excluded
// columns and attaches hints. The key is always kept.
func shapeColumns(cols []replica.Column, include []string, hints map[string]replica.TypeHint) []replica.Column {
	var out []replica.Column
	for _, c := range cols {
		if include != nil && !c.Key && !contains(include, c.Name) {
			continue
		}
		if h, ok := hints[c.Name]; ok {
			// A hint without data_type refines the column's type; init
			// checked that it can, and a column retyped since keeps its
			// own type if it no longer can.
			if r, err := h.Refine(c); err == nil {
				c.Hint = &r
			}
		}
		out = append(out, c)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	Plugin       string
	Database     string
	Active       bool
	ActivePID    *int32
	ConfirmedLSN uint64
	WALStatus    string
}

func readSlot(ctx context.Context, conn *pgx.Conn, slot string) (slotInfo, bool, error) {
	var s slotInfo
	var confirmed *string
	var walStatus *string
	err := conn.QueryRow(ctx, `SELECT COALESCE(plugin, ''), COALESCE(database::text, ''), active, active_pid,
		confirmed_flush_lsn::text, wal_status FROM pg_replication_slots WHERE slot_name = $1`, slot).
		Scan(&s.Plugin, &s.Database, &s.Active, &s.ActivePID, &confirmed, &walStatus)
	if err == pgx.ErrNoRows {
		return s, false, nil
	}
	if err != nil {
		return s, false, sourceError("reading replication slot", err)
	}
	if confirmed != nil {
		lsn, err := parseLSN(*confirmed)
		if err != nil {
			return s, false, err
		}
		s.ConfirmedLSN = lsn
	}
	if walStatus != nil {
		s.WALStatus = *walStatus
	}
	return s, true, nil
}

// checkSlotUsable refuses slots that are not ours to stream from.
func checkSlotUsable(ctx context.Context, conn *pgx.Conn, slot string, s slotInfo) error {
	if s.Plugin != "pgoutput" {
		return Errorf(CodePrerequisite, "replication slot %q uses output plugin %q, pgcdc needs pgoutput", slot, s.Plugin)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return sourceError("reading current database", err)
	}
	if s.Database != db {
		return Errorf(CodePrerequisite, "replication slot %q belongs to database %q, not %q", slot, s.Database, db)
	}
	if s.Active {
		pid := int32(0)
		if s.ActivePID != nil {
			pid = *s.ActivePID
		}
		return Errorf(CodeObjectInUse, "replication slot %q is active for PID %d: another consumer is reading it", slot, pid)
	}
	if s.WALStatus == "lost" {
		return Errorf(CodePrerequisite, "replication slot %q has lost required WAL; drop it with init_replication(..., reset => true) and take a new snapshot", slot)
	}
	return nil
}

func parseLSN(s string) (uint64, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}

// FormatLSN prints an LSN the way Postgres does.
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
