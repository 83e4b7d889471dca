package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// DefaultPublish is what a new publication publishes when init_replication
// is not told: Postgres's own default for CREATE PUBLICATION. dlt leaves
// truncate out, which lets a TRUNCATE on the source silently diverge the
// replica.
const DefaultPublish = "insert, update, delete, truncate"

// InitOptions are init_replication's arguments.
type InitOptions struct {
	Slot        string
	Publication string
	Schema      string
	// Tables to publish; nil publishes the whole schema (TABLES IN SCHEMA).
	Tables []string
	// Publish is the publication's operation list; empty keeps an existing
	// publication's and gives a new one DefaultPublish.
	Publish          string
	PersistSnapshots bool
	TableOptions
	Reset bool
	// Adopt lets pgcdc take over a slot, publication or destination table
	// that exists but that pgcdc did not create.
	Adopt bool
	// Dataset is the destination schema; empty means the source schema's name.
	Dataset string
	// WriteDisposition is replica.DispositionMerge, DispositionAppend or
	// DispositionSCD2; empty keeps a slot's stored one and gives a new slot
	// merge.
	WriteDisposition string
	Progress         func(string)
}

// InitResult is one row of init_replication's result.
type InitResult struct {
	Table         string // source table, schema-qualified
	SnapshotRows  *int64 // nil when no snapshot was taken
	ConsistentLSN uint64
	Slot          string
	Publication   string
	Dataset       string
}

// initPlan is everything init_replication decided before it changed
// anything.
type initPlan struct {
	o   InitOptions
	src replica.SourceIdentity

	prev    replica.State // the slot's state before this call
	hasPrev bool
	// continuing: the existing slot and its state go on; otherwise the
	// slot is new and the state starts over.
	continuing bool
	adoptSlot  bool // an existing slot pgcdc did not create becomes its own

	slot       slotInfo
	slotExists bool
	dropSlot   bool // drop the existing slot first (reset, or an incomplete init)
	pubExists  bool
	dropPub    bool // reset
	ownPub     bool // after this call
	publish    string
	pub        publication

	disposition string // the slot's write disposition after this call
	snapshotAt  time.Time

	tables  []*sourceTable
	opts    []tableOptions
	dest    []*replica.Table
	snap    []bool // by table: take a snapshot
	columns bool   // use publication column lists (Postgres 15+, tables by name)
}

// Init sets up replication: the publication, the slot and, if asked, the
// initial snapshot, read inside the snapshot the slot exported so that the
// stream starts exactly where the snapshot ends.
//
// Every argument is checked and every conflict with what exists is found
// before anything is created; whatever this call created is removed again if
// a later step fails.
func (r *Replicator) Init(ctx context.Context, o InitOptions) ([]InitResult, error) {
	if err := validateInit(o); err != nil {
		return nil, err
	}
	if o.Dataset != "" {
		if err := r.checkSchemaName(o.Dataset, "dataset_name"); err != nil {
			return nil, err
		}
	}
	conn, done, err := r.open(ctx, o.Slot, true)
	if err != nil {
		return nil, err
	}
	defer done()
	repl, err := r.connectReplication(ctx)
	if err != nil {
		return nil, err
	}
	defer repl.Close(context.Background())
	src, err := identify(ctx, repl)
	if err != nil {
		return nil, err
	}
	p, err := r.planInit(ctx, conn, repl, src, o)
	if err != nil {
		return nil, err
	}
	var undo undoLog
	res, err := r.runInit(ctx, conn, repl, p, &undo)
	if err != nil {
		return nil, undo.run(r, err)
	}
	return res, nil
}

func validateInit(o InitOptions) error {
	if err := validateSlot(o.Slot); err != nil {
		return err
	}
	if err := validateName("pub_name", o.Publication); err != nil {
		return err
	}
	if err := validateName("schema_name", o.Schema); err != nil {
		return err
	}
	if o.Dataset != "" {
		if err := validateName("dataset_name", o.Dataset); err != nil {
			return err
		}
	}
	if o.Tables != nil && len(o.Tables) == 0 {
		return Errorf(CodeInvalidParameter, "table_names is empty; pass NULL to replicate the whole schema")
	}
	for i, t := range o.Tables {
		if err := validateName("table name", t); err != nil {
			return err
		}
		if slices.Contains(o.Tables[:i], t) {
			return Errorf(CodeInvalidParameter, "table_names lists %q twice", t)
		}
	}
	if o.Publish != "" {
		if _, _, err := parsePublish(o.Publish); err != nil {
			return err
		}
	}
	switch o.WriteDisposition {
	case "", replica.DispositionMerge, replica.DispositionAppend, replica.DispositionSCD2:
	default:
		return Errorf(CodeInvalidParameter, "write_disposition must be 'merge', 'append' or 'scd2', not %s", quoteLiteral(o.WriteDisposition))
	}
	return nil
}

// storedDisposition is a state's write disposition; states written before
// it was recorded merge.
func storedDisposition(st replica.State) string {
	if st.WriteDisposition == "" {
		return replica.DispositionMerge
	}
	return st.WriteDisposition
}

// checkSchemaName refuses a destination schema the destination reserves.
func (r *Replicator) checkSchemaName(name, what string) error {
	if err := r.dest.CheckSchemaName(name); err != nil {
		if errors.Is(err, replica.ErrReservedSchema) {
			return &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidName,
				Message: fmt.Sprintf("%s %q cannot hold replicated tables: %v", what, name, err),
				Hint:    "Choose another dataset_name."}
		}
		return fmt.Errorf("destination: %w", err)
	}
	return nil
}

// planInit reads the source and the destination and decides what the call
// will do. It changes nothing.
func (r *Replicator) planInit(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, src replica.SourceIdentity, o InitOptions) (*initPlan, error) {
	p := &initPlan{o: o, src: src}
	var err error
	if p.prev, p.hasPrev, err = r.dest.State(ctx, o.Slot); err != nil {
		return nil, fmt.Errorf("destination: reading state: %w", err)
	}
	// The stored state is this source's unless its identity says otherwise.
	foreign := false
	if p.hasPrev {
		if _, _, err := checkIdentity(ctx, repl, p.prev, src); err != nil {
			if !o.Reset {
				return nil, err
			}
			foreign = true
		}
	}
	own := p.hasPrev && !foreign
	if own && p.prev.Publication != o.Publication && !o.Reset {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("replication slot %q replicates publication %q, not %q", o.Slot, p.prev.Publication, o.Publication),
			Hint:    "Call it with its own publication, or re-create both with reset => true."}
	}
	ownSlot := own && p.prev.OwnsSlot
	ownPub := own && p.prev.OwnsPublication && p.prev.Publication == o.Publication

	if p.slot, p.slotExists, err = readSlot(ctx, conn, o.Slot); err != nil {
		return nil, err
	}
	var pubNow publication
	if pubNow, p.pubExists, err = readPublication(ctx, conn, o.Publication); err != nil {
		return nil, err
	}
	// Conflicts with what exists are reported after the arguments have
	// been checked against the source: a bad table name is the first thing
	// to fix.
	var refused error
	refuse := func(err error) {
		if refused == nil {
			refused = err
		}
	}
	if p.slotExists {
		if !ownSlot && !o.Adopt {
			refuse(notOurs("replication slot", o.Slot))
		}
		if p.slot.Active {
			refuse(Errorf(CodeObjectInUse, "replication slot %q is active for PID %d: another consumer is reading it", o.Slot, p.slot.pid()))
		}
		if !o.Reset {
			refuse(checkSlotUsable(ctx, conn, o.Slot, p.slot))
		}
	}
	switch {
	case o.Reset:
		p.dropSlot, p.dropPub = p.slotExists, p.pubExists
		if p.pubExists && !ownPub && !o.Adopt {
			refuse(notOurs("publication", o.Publication))
		}
	case !p.slotExists:
		if own && p.prev.Ready {
			refuse(&pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
				Message: fmt.Sprintf("replication slot %q no longer exists on the source, so its replica cannot be continued exactly", o.Slot),
				Hint:    "Something dropped the slot outside pgcdc. Run init_replication(..., reset => true) to start over with a new snapshot."})
		}
	case own && !p.prev.Ready:
		// An earlier init_replication created the slot but did not commit
		// its snapshot; the snapshot the slot exported died with it.
		p.dropSlot = true
	case own:
		p.continuing = true
		end, err := walEnd(ctx, conn)
		if err != nil {
			return nil, err
		}
		refuse(checkPosition(p.prev, p.slot, end))
	default: // adopt => true on a slot pgcdc did not create
		p.continuing, p.adoptSlot = true, true
	}
	if own && p.continuing && !p.pubExists {
		refuse(&pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("publication %q no longer exists on the source, so slot %q cannot be continued exactly", o.Publication, o.Slot),
			Hint:    "Run init_replication(..., reset => true) to start over with a new snapshot."})
	}

	// What the publication publishes.
	pubExistsAfterReset := p.pubExists && !p.dropPub
	switch {
	case o.Publish != "":
		list, want, _ := parsePublish(o.Publish)
		if pubExistsAfterReset && !want.sameOps(pubNow) {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
				Message: fmt.Sprintf("publication %q publishes %s, not %s", o.Publication, pubNow.ops(), want.ops()),
				Hint:    "Omit publish to keep what the publication publishes, or re-create it with reset => true."}
		}
		p.publish, p.pub = list, want
		if pubExistsAfterReset {
			p.pub = pubNow
		}
	case pubExistsAfterReset:
		p.publish, p.pub = pubNow.ops(), pubNow
	case o.WriteDisposition == replica.DispositionAppend:
		// append keeps inserts only: a new publication publishes just them.
		p.publish, p.pub, _ = parsePublish("insert")
	default:
		p.publish, p.pub, _ = parsePublish(DefaultPublish)
	}

	// The write disposition: fixed at the first init_replication of a slot,
	// and consistent with what the publication publishes.
	p.disposition = o.WriteDisposition
	if p.continuing && own {
		if was := storedDisposition(p.prev); p.disposition != "" && p.disposition != was {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
				Message: fmt.Sprintf("write_disposition %s conflicts with slot %q, which was set up with %s", quoteLiteral(p.disposition), o.Slot, quoteLiteral(was)),
				Hint:    "Omit write_disposition to keep it, or re-create the slot with reset => true."}
		}
		p.disposition = storedDisposition(p.prev)
	}
	if p.disposition == "" {
		p.disposition = replica.DispositionMerge
	}
	switch {
	case p.disposition == replica.DispositionAppend && !p.pub.insertOnly():
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("write_disposition 'append' keeps inserted rows only, but publication %q publishes %s", o.Publication, p.pub.ops()),
			Hint:    "Use publish => 'insert', or write_disposition 'merge' or 'scd2' to follow updates and deletes."}
	case p.disposition == replica.DispositionSCD2 && !p.pub.Update:
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
			Message: fmt.Sprintf("write_disposition 'scd2' keeps the history of updates, but publication %q publishes %s", o.Publication, p.pub.ops()),
			Hint:    "Publish at least insert and update (the default publishes insert, update, delete, truncate)."}
	}

	// Dataset: fixed at the first init_replication of a slot.
	dataset := o.Dataset
	if p.continuing && own {
		if o.Dataset != "" && o.Dataset != p.prev.Dataset {
			was := "each table in a schema named after its source schema"
			if p.prev.Dataset != "" {
				was = fmt.Sprintf("dataset_name %q", p.prev.Dataset)
			}
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter,
				Message: fmt.Sprintf("dataset_name %q conflicts with slot %q, which was set up with %s", o.Dataset, o.Slot, was),
				Hint:    "Omit dataset_name to keep it, or re-create the slot with reset => true."}
		}
		dataset = p.prev.Dataset
	}

	// The tables and their options.
	names := o.Tables
	if names == nil {
		if names, err = listTables(ctx, conn, o.Schema); err != nil {
			return nil, err
		}
	} else if _, err := listTables(ctx, conn, o.Schema); err != nil {
		return nil, err // the schema must exist
	}
	for _, n := range names {
		st, err := describeTable(ctx, conn, o.Schema, n)
		if err != nil {
			return nil, err
		}
		if !st.hasKey() && p.disposition == replica.DispositionSCD2 {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeFeatureNotSupp,
				Message: fmt.Sprintf("table %s.%s has no primary key or replica identity index, so write_disposition 'scd2' cannot tell the versions of one row from another", o.Schema, n),
				Hint:    "Add a primary key or set REPLICA IDENTITY USING INDEX."}
		}
		if !st.hasKey() {
			if st.Identity == 'f' {
				// REPLICA IDENTITY FULL sends whole old rows: all columns
				// together identify a row, and equal rows are a multiset.
				for i := range st.Columns {
					st.Columns[i].Key = true
				}
				st.FullRow = true
			} else if p.pub.Update || p.pub.Delete {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
					Message: fmt.Sprintf("table %s.%s has no primary key or replica identity, so its updates and deletes cannot be replicated", o.Schema, n),
					Hint:    "Add a primary key, set REPLICA IDENTITY FULL or USING INDEX, or replicate it with publish => 'insert'."}
			}
		}
		p.tables = append(p.tables, st)
	}
	if p.opts, err = o.TableOptions.resolve(p.tables, "this call"); err != nil {
		return nil, err
	}
	if p.continuing && own {
		bindTables(&p.prev, p.tables, dataset)
		for i, st := range p.tables {
			prev := p.prev.Table(st.OID)
			if prev == nil {
				continue
			}
			if c := p.opts[i].conflict(prev); c != "" {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeInvalidParameter, Message: c,
					Hint: "Options are fixed when a table is first replicated. Omit them to keep them, or re-create the slot with reset => true to change them."}
			}
			p.opts[i] = tableOptions{include: prev.IncludeColumns, hints: prev.Hints}
		}
	}

	if refused != nil {
		return nil, refused
	}

	// Destination tables: valid schemas, no clashes.
	if err := r.planDestinations(ctx, p, dataset, own); err != nil {
		return nil, err
	}

	// A publication that publishes more than the replica will hold would
	// stream changes for tables nobody copied.
	if pubExistsAfterReset {
		if !ownPub && !o.Adopt && p.altersPublication(ctx, conn) {
			return nil, notOurs("publication", o.Publication)
		}
		if err := p.checkPublicationScope(ctx, conn, own); err != nil {
			return nil, err
		}
	}
	p.ownPub = ownPub || o.Adopt || !pubExistsAfterReset

	// Publication column lists keep excluded columns out of the stream
	// altogether; Postgres 15 added them, for tables named one by one.
	if o.Tables != nil {
		var version int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return nil, sourceError("reading server version", err)
		}
		p.columns = version >= 150000
	}
	if !p.continuing && !p.dropSlot {
		if err := checkFreeSlot(ctx, conn); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func notOurs(kind, name string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: CodeInsufficientPriv,
		Message: fmt.Sprintf("%s %q exists but was not created by pgcdc", kind, name),
		Detail:  "pgcdc consumes, alters and drops only the slots and publications it created.",
		Hint:    "If it is meant for pgcdc, take it over with init_replication(..., adopt => true); otherwise choose another name."}
}

func (s slotInfo) pid() int32 {
	if s.ActivePID != nil {
		return *s.ActivePID
	}
	return 0
}

// checkFreeSlot fails early when the source has no replication slot left.
func checkFreeSlot(ctx context.Context, conn *pgx.Conn) error {
	var used, limit int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_replication_slots), current_setting('max_replication_slots')::int").Scan(&used, &limit); err != nil {
		return sourceError("counting replication slots", err)
	}
	if used >= limit {
		return &pgconn.PgError{Severity: "ERROR", Code: "53400",
			Message: fmt.Sprintf("all replication slots are in use (max_replication_slots = %d)", limit),
			Hint:    "Free one, or increase max_replication_slots on the source."}
	}
	return nil
}

// planDestinations maps each table to its destination table and decides
// which are copied.
func (r *Replicator) planDestinations(ctx context.Context, p *initPlan, dataset string, own bool) error {
	o := p.o
	others, err := r.dest.States(ctx)
	if err != nil {
		return fmt.Errorf("destination: reading state: %w", err)
	}
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	checked := map[string]bool{}
	seen := map[replica.TableName]string{}
	for i, st := range p.tables {
		t := r.destTable(st.OID, st.Schema, st.Name, shapeColumns(st.Columns, p.opts[i].include, p.opts[i].hints), dataset, p.pub, st.FullRow, p.disposition)
		t.Types = st.Types
		if err := r.dest.CheckTable(t); err != nil {
			return Errorf(CodeInvalidParameter, "%v", err)
		}
		name := t.TableName()
		if !checked[name.Schema] && dataset == "" {
			checked[name.Schema] = true
			if err := r.checkSchemaName(name.Schema, "destination schema"); err != nil {
				return err
			}
		}
		if prev, ok := seen[name]; ok {
			return Errorf(CodeDuplicateTable, "tables %s and %s.%s would both be replicated into %s", prev, st.Schema, st.Name, name)
		}
		seen[name] = st.Schema + "." + st.Name
		for _, other := range others {
			if other.Slot == o.Slot {
				continue
			}
			if other.TableByDest(name) != nil {
				return &pgconn.PgError{Severity: "ERROR", Code: CodeDuplicateTable,
					Message: fmt.Sprintf("destination table %s is already replicated by slot %q", name, other.Slot),
					Hint:    "Choose another dataset_name."}
			}
		}
		var prev *replica.TableState
		if p.hasPrev {
			prev = p.prev.TableByDest(name)
		}
		if prev != nil && own && p.continuing && prev.OID != 0 && prev.OID != st.OID {
			return Errorf(CodeDuplicateTable, "destination table %s already holds source table %s (OID %d), not %s.%s", name, prev.Source, prev.OID, st.Schema, st.Name)
		}
		exists, err := tx.TableExists(ctx, name.Schema, name.Name)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if exists && prev == nil && !o.Adopt {
			return &pgconn.PgError{Severity: "ERROR", Code: CodeDuplicateTable,
				Message: fmt.Sprintf("destination table %s exists but was not created by pgcdc for slot %q", name, o.Slot),
				Hint:    "Choose another dataset_name, drop the table, or let pgcdc overwrite it with adopt => true."}
		}
		// Copy: everything of a new slot; for a slot that goes on, what it
		// does not hold yet: tables new to it, and tables whose replica is
		// missing (resync).
		inState := p.continuing && own && p.prev.Table(st.OID) != nil
		snap := !p.continuing || !inState || !exists
		if p.continuing && inState && !exists && !o.PersistSnapshots {
			return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
				Message: fmt.Sprintf("replica table %s of %s.%s is missing", name, st.Schema, st.Name),
				Hint:    "Pass persist_snapshots => true to copy it again."}
		}
		p.snap = append(p.snap, snap && o.PersistSnapshots)
		if p.continuing && snap && o.PersistSnapshots && (t.AppendOnly || t.FullRow || t.History) {
			// A table copied into an existing slot is read in a fresh
			// snapshot, not at the slot's position, so changes between the
			// two reach it twice. Merges absorb that; appended and multiset
			// rows would be duplicated, and history would get versions twice.
			why := "the table has no key to merge on, so rows changed during the copy would be duplicated"
			if t.History {
				why = "its history would get the versions of rows changed during the copy twice"
			}
			return &pgconn.PgError{Severity: "ERROR", Code: CodeFeatureNotSupp,
				Message: fmt.Sprintf("cannot snapshot %s into the existing slot %q: %s", t.QualifiedSource(), o.Slot, why),
				Hint:    "Replicate it with its own slot and publication, or re-create this slot with reset => true."}
		}
		p.dest = append(p.dest, t)
	}
	return nil
}

// checkPublicationScope refuses an existing publication that publishes
// tables the replica would not hold: their changes would arrive without a
// snapshot.
func (p *initPlan) checkPublicationScope(ctx context.Context, conn *pgx.Conn, own bool) error {
	rows, err := conn.Query(ctx, `SELECT c.oid, pt.schemaname::text, pt.tablename::text FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1 ORDER BY 2, 3`, p.o.Publication)
	if err != nil {
		return sourceError("listing publication tables", err)
	}
	type pubTable struct {
		oid          uint32
		schema, name string
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pubTable, error) {
		var t pubTable
		err := r.Scan(&t.oid, &t.schema, &t.name)
		return t, err
	})
	if err != nil {
		return sourceError("listing publication tables", err)
	}
	var extra []string
	for _, pt := range pts {
		covered := slices.ContainsFunc(p.tables, func(t *sourceTable) bool { return t.OID == pt.oid })
		if !covered && own && p.continuing {
			// Tables the slot already holds, and tables that join a schema
			// it publishes whole on their own.
			covered = p.prev.Table(pt.oid) != nil || slices.Contains(p.prev.Schemas, pt.schema)
		}
		if !covered {
			extra = append(extra, pt.schema+"."+pt.name)
		}
	}
	if len(extra) > 0 {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("publication %q also publishes %s, which slot %q's replica does not hold", p.o.Publication, strings.Join(extra, ", "), p.o.Slot),
			Hint:    "List them in table_names so that they are copied too, or use a publication of their own."}
	}
	return nil
}

// altersPublication reports whether the call would add to the publication.
func (p *initPlan) altersPublication(ctx context.Context, conn *pgx.Conn) bool {
	have, err := publicationOIDs(ctx, conn, p.o.Publication)
	if err != nil {
		return true
	}
	for _, t := range p.tables {
		if !have[t.OID] {
			return true
		}
	}
	return false
}

func publicationOIDs(ctx context.Context, conn *pgx.Conn, pub string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, `SELECT c.oid FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1`, pub)
	if err != nil {
		return nil, sourceError("listing publication tables", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, sourceError("listing publication tables", err)
	}
	have := map[uint32]bool{}
	for _, o := range oids {
		have[o] = true
	}
	return have, nil
}

// runInit carries out a plan. Each step that creates something records how
// to undo it first.
func (r *Replicator) runInit(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, p *initPlan, undo *undoLog) ([]InitResult, error) {
	o := p.o
	if o.Reset {
		if p.dropSlot {
			if err := dropSlot(ctx, conn, o.Slot); err != nil {
				return nil, err
			}
			p.dropSlot = false
		}
		if p.dropPub {
			if _, err := conn.Exec(ctx, "DROP PUBLICATION "+ident(o.Publication)); err != nil {
				return nil, sourceError("dropping publication", err)
			}
			p.pubExists = false
		}
		// The new state below replaces the old one; a failure from here on
		// must not bring back a state whose slot is gone.
		p.hasPrev = false
	}

	st := replica.State{Slot: o.Slot, Publication: o.Publication, Source: p.src, OwnsSlot: true, OwnsPublication: p.ownPub,
		Publish: p.publish, Dataset: datasetOf(p), WriteDisposition: p.disposition, Ready: false}
	if p.continuing && !p.adoptSlot {
		st = p.prev
		st.Source, st.OwnsPublication = p.src, p.ownPub
	}
	if o.Tables == nil && !slices.Contains(st.Schemas, o.Schema) {
		st.Schemas = append(st.Schemas, o.Schema)
	}

	// A new slot is announced in the destination before it exists, so that
	// a crash right after creating it leaves a record that it is ours.
	if !p.continuing {
		if err := r.saveState(ctx, &st, o.Slot); err != nil {
			return nil, err
		}
		prev, hasPrev := p.prev, p.hasPrev
		// Kept when the slot or publication could not be dropped: the
		// record that they are pgcdc's lets the next call clean them up.
		undo.addUnlessFailed("restore the replication state", func(ctx context.Context) error {
			if hasPrev {
				return r.saveState(ctx, &prev, prev.Slot)
			}
			return r.saveState(ctx, nil, o.Slot)
		})
	}

	if err := r.ensurePublication(ctx, conn, p, undo); err != nil {
		return nil, err
	}

	var snapshotName string
	var consistent uint64
	switch {
	case p.continuing && p.adoptSlot:
		consistent = p.slot.ConfirmedLSN
		st.LSN, st.SlotLSN = consistent, consistent
	case p.continuing:
		consistent = st.LSN
	default:
		if p.dropSlot {
			r.notify(o.Progress, fmt.Sprintf("slot %s has no completed snapshot in the destination; recreating it", o.Slot))
			if err := dropSlot(ctx, conn, o.Slot); err != nil {
				return nil, err
			}
		}
		action := "NOEXPORT_SNAPSHOT"
		if o.PersistSnapshots {
			action = "EXPORT_SNAPSHOT"
		}
		// Versions a snapshot opens are valid from the source's clock now:
		// every transaction the stream will bring commits after the slot
		// becomes consistent, so later than this.
		if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&p.snapshotAt); err != nil {
			return nil, sourceError("reading the source's clock", err)
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, o.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
		if err != nil {
			return nil, sourceError("creating replication slot", err)
		}
		undo.add("drop replication slot "+o.Slot, func(ctx context.Context) error {
			return pglogrepl.DropReplicationSlot(ctx, repl, o.Slot, pglogrepl.DropReplicationSlotOptions{Wait: true})
		})
		snapshotName = res.SnapshotName
		if consistent, err = parseLSN(res.ConsistentPoint); err != nil {
			return nil, err
		}
		st.LSN, st.SlotLSN = consistent, consistent
		r.log.Info().Str("slot", o.Slot).Str("consistent_lsn", res.ConsistentPoint).Msg("created replication slot")
	}

	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	for _, t := range p.dest {
		// Columns the source rewrote are filled by the snapshot, or by the
		// stream's own backfill when it meets the new shape.
		if _, err := tx.EnsureTable(ctx, t); err != nil {
			return nil, fmt.Errorf("destination: creating %s: %w", t.Qualified(), err)
		}
	}
	counts := map[*replica.Table]int64{}
	heap := newHeapWatch()
	if slices.Contains(p.snap, true) {
		sconn, err := r.connect(ctx)
		if err != nil {
			return nil, err
		}
		defer sconn.Close(context.Background())
		if _, err := sconn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return nil, sourceError("starting snapshot transaction", err)
		}
		if snapshotName != "" {
			if _, err := sconn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshotName)); err != nil {
				return nil, sourceError("importing the slot's snapshot", err)
			}
		}
		for i, t := range p.dest {
			if !p.snap[i] {
				continue
			}
			// A re-run can find rows from a snapshot that failed to commit
			// state; the snapshot replaces them.
			if err := tx.Truncate(ctx, t); err != nil {
				return nil, fmt.Errorf("destination: %w", err)
			}
			t.SnapshotTime = p.snapshotAt
			n, err := copyTable(ctx, sconn, tx, t, p.tables[i].Kind, p.tables[i].Rows, consistent, r.BatchBytes, heap, o.Progress, r.observeSnapshot(o.Slot, t.Qualified(), p.tables[i].Rows))
			if err != nil {
				return nil, err
			}
			counts[t] = n
		}
		if _, err := sconn.Exec(ctx, "COMMIT"); err != nil {
			return nil, sourceError("ending snapshot transaction", err)
		}
		r.log.Debug().Str("slot", o.Slot).Uint64("go_heap_peak_bytes", heap.max()).Int64("batch_bytes", r.BatchBytes).Msg("snapshot memory")
	}

	for i, t := range p.dest {
		ts := replica.TableState{OID: t.OID, Source: replica.TableName{Schema: t.SourceSchema, Name: t.SourceName}, Dest: t.TableName(),
			IncludeColumns: p.opts[i].include, Hints: p.opts[i].hints}
		if prev := st.Table(t.OID); prev != nil {
			*prev = ts
		} else {
			st.Tables = append(st.Tables, ts)
		}
	}
	st.Ready = true
	if err := tx.SaveState(ctx, st); err != nil {
		return nil, fmt.Errorf("destination: saving state: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("destination: commit: %w", err)
	}

	out := make([]InitResult, len(p.dest))
	for i, t := range p.dest {
		out[i] = InitResult{Table: t.QualifiedSource(), ConsistentLSN: consistent, Slot: o.Slot,
			Publication: o.Publication, Dataset: t.Schema}
		if n, ok := counts[t]; ok {
			out[i].SnapshotRows = &n
		}
	}
	return out, nil
}

func datasetOf(p *initPlan) string {
	if p.continuing && !p.adoptSlot {
		return p.prev.Dataset
	}
	return p.o.Dataset
}

// saveState replaces a slot's state in a transaction of its own; nil
// deletes it.
func (r *Replicator) saveState(ctx context.Context, st *replica.State, slot string) error {
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	if st == nil {
		err = tx.DeleteState(ctx, slot)
	} else {
		err = tx.SaveState(ctx, *st)
	}
	if err != nil {
		return fmt.Errorf("destination: saving state: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("destination: commit: %w", err)
	}
	return nil
}

// ensurePublication creates the publication or adds the missing tables to
// it, recording how to undo each change.
func (r *Replicator) ensurePublication(ctx context.Context, conn *pgx.Conn, p *initPlan, undo *undoLog) error {
	o := p.o
	pub := ident(o.Publication)
	exec := func(what, q string) error {
		if _, err := conn.Exec(ctx, q); err != nil {
			return sourceError(what, err)
		}
		return nil
	}
	if !p.pubExists {
		// Created empty, then filled: the same path serves a first call and
		// a call that adds tables.
		with := fmt.Sprintf(" WITH (publish = %s, publish_via_partition_root = true)", quoteLiteral(p.publish))
		if err := exec("creating publication", "CREATE PUBLICATION "+pub+with); err != nil {
			return err
		}
		undo.add("drop publication "+o.Publication, func(ctx context.Context) error {
			_, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pub)
			return err
		})
	}
	if o.Tables == nil {
		var inSchema bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_namespace pn
			JOIN pg_publication p ON p.oid = pn.pnpubid JOIN pg_namespace n ON n.oid = pn.pnnspid
			WHERE p.pubname = $1 AND n.nspname = $2)`, o.Publication, o.Schema).Scan(&inSchema); err != nil {
			return sourceError("reading publication schemas", err)
		}
		if inSchema {
			return nil
		}
		if err := exec("adding schema to publication", "ALTER PUBLICATION "+pub+" ADD TABLES IN SCHEMA "+ident(o.Schema)); err != nil {
			return err
		}
		if p.pubExists {
			undo.add("remove schema "+o.Schema+" from publication "+o.Publication, func(ctx context.Context) error {
				_, err := conn.Exec(ctx, "ALTER PUBLICATION "+pub+" DROP TABLES IN SCHEMA "+ident(o.Schema))
				return err
			})
		}
		return nil
	}
	// A statement of a pgcdc that was killed during its own call may still
	// be running on the source and commit a table into the publication
	// after the membership is read here (a backend finishes its statement
	// before it notices its client is gone). Adding that table then fails
	// with 42710; the membership is read again and the rest added.
	var names []string
	for attempt := 1; ; attempt++ {
		have, err := publicationOIDs(ctx, conn, o.Publication)
		if err != nil {
			return err
		}
		var add []string
		names = names[:0]
		for i, t := range p.tables {
			if have[t.OID] {
				continue
			}
			spec := ident(t.Schema, t.Name)
			if p.columns && p.opts[i].include != nil && !t.FullRow && t.Identity != 'f' {
				var cols []string
				for _, c := range p.dest[i].Columns {
					cols = append(cols, ident(c.Name))
				}
				spec += " (" + strings.Join(cols, ", ") + ")"
			}
			add = append(add, spec)
			names = append(names, ident(t.Schema, t.Name))
		}
		if len(add) == 0 {
			return nil
		}
		err = exec("adding tables to publication", "ALTER PUBLICATION "+pub+" ADD TABLE "+strings.Join(add, ", "))
		var pe *pgconn.PgError
		if err == nil {
			break
		}
		if !errors.As(err, &pe) || pe.Code != "42710" || attempt == 3 {
			return err
		}
	}
	if p.pubExists {
		undo.add("remove the added tables from publication "+o.Publication, func(ctx context.Context) error {
			_, err := conn.Exec(ctx, "ALTER PUBLICATION "+pub+" DROP TABLE "+strings.Join(names, ", "))
			return err
		})
	}
	return nil
}

// undoLog is what a failing call must take back, in reverse order.
type undoLog struct {
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
	// unlessFailed skips the step when a step undone before it failed.
	unlessFailed bool
}

func (u *undoLog) add(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what: what, fn: fn})
}

func (u *undoLog) addUnlessFailed(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what: what, fn: fn, unlessFailed: true})
}

// run undoes every step and returns err, with what could not be undone in
// its detail.
func (u *undoLog) run(r *Replicator, err error) error {
	if len(u.steps) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failed []string
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if s.unlessFailed && len(failed) > 0 {
			failed = append(failed, "kept the record that they are pgcdc's, so that the next init_replication can drop them")
			continue
		}
		if uerr := s.fn(ctx); uerr != nil {
			r.log.Warn().Err(uerr).Str("step", s.what).Msg("init_replication: cleanup failed")
			failed = append(failed, fmt.Sprintf("could not %s: %v", s.what, uerr))
		} else {
			r.log.Info().Str("step", s.what).Msg("init_replication: cleaned up after failure")
		}
	}
	if len(failed) == 0 {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := *pe
		c.Detail = strings.TrimSpace(c.Detail + " Cleanup after the failure was incomplete: " + strings.Join(failed, "; ") + ".")
		return &c
	}
	return fmt.Errorf("%w (cleanup after the failure was incomplete: %s)", err, strings.Join(failed, "; "))
}

// destTable maps a source table to its destination table.
func (r *Replicator) destTable(oid uint32, schema, name string, cols []replica.Column, dataset string, pub publication, fullRow bool, disposition string) *replica.Table {
	t := &replica.Table{OID: oid, SourceSchema: schema, SourceName: name, Schema: schema, Name: name, Columns: cols,
		HasDeletedTS: pub.Delete, FullRow: fullRow}
	if dataset != "" {
		t.Schema = dataset
	}
	hasKey := false
	for _, c := range cols {
		hasKey = hasKey || c.Key
	}
	if disposition == replica.DispositionSCD2 && hasKey && !fullRow {
		// A delete closes the version: there is no deleted row to mark.
		t.History, t.HasDeletedTS = true, false
		return t
	}
	t.AppendOnly = pub.insertOnly() || !hasKey
	return t
}

// bindTables gives state tables recorded without an OID (by a pgcdc that
// did not record them) the OID of the source table that maps to the same
// destination table.
func bindTables(st *replica.State, tables []*sourceTable, dataset string) bool {
	changed := false
	for i := range st.Tables {
		ts := &st.Tables[i]
		if ts.OID != 0 {
			continue
		}
		for _, t := range tables {
			dest := replica.TableName{Schema: t.Schema, Name: t.Name}
			if dataset != "" {
				dest.Schema = dataset
			}
			if dest == ts.Dest && st.Table(t.OID) == nil {
				ts.OID, ts.Source, changed = t.OID, replica.TableName{Schema: t.Schema, Name: t.Name}, true
				break
			}
		}
	}
	return changed
}

func (r *Replicator) notify(progress func(string), msg string) {
	r.log.Info().Msg(msg)
	if progress != nil {
		progress(msg)
	}
}

func dropSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
		return sourceError("dropping replication slot", err)
	}
	return nil
}
