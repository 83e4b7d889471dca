package replicator

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// InitOptions are init_replication's arguments.
type InitOptions struct {
	Slot        string
	Publication string
	Schema      string
	// Tables to publish; nil publishes the whole schema (TABLES IN SCHEMA).
	Tables           []string
	Publish          string
	PersistSnapshots bool
	TableOptions
	Reset bool
	// Dataset is the destination schema; empty means the source schema's name.
	Dataset  string
	Progress func(string)
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

// Init sets up replication: the publication, the slot and, if asked, the
// initial snapshot, read inside the snapshot the slot exported so that the
// stream starts exactly where the snapshot ends.
func (r *Replicator) Init(ctx context.Context, o InitOptions) ([]InitResult, error) {
	if err := validateSlot(o.Slot); err != nil {
		return nil, err
	}
	if err := validateName("pub_name", o.Publication); err != nil {
		return nil, err
	}
	if err := validateName("schema_name", o.Schema); err != nil {
		return nil, err
	}
	if o.Dataset != "" {
		if err := validateName("dataset_name", o.Dataset); err != nil {
			return nil, err
		}
	}
	if o.Tables != nil && len(o.Tables) == 0 {
		return nil, Errorf(CodeInvalidParameter, "table_names is empty; pass NULL to replicate the whole schema")
	}
	for _, t := range o.Tables {
		if err := validateName("table name", t); err != nil {
			return nil, err
		}
	}
	publishList, pub, err := parsePublish(o.Publish)
	if err != nil {
		return nil, err
	}
	conn, done, err := r.open(ctx, o.Slot, true)
	if err != nil {
		return nil, err
	}
	defer done()

	names := o.Tables
	if names == nil {
		if names, err = listTables(ctx, conn, o.Schema); err != nil {
			return nil, err
		}
	} else if _, err := listTables(ctx, conn, o.Schema); err != nil {
		return nil, err // schema must exist
	}
	var tables []*sourceTable
	for _, n := range names {
		st, err := describeTable(ctx, conn, o.Schema, n)
		if err != nil {
			return nil, err
		}
		if !st.hasKey() {
			if st.Identity == 'f' {
				// REPLICA IDENTITY FULL sends whole old rows: all columns
				// together identify a row, and equal rows are a multiset.
				for i := range st.Columns {
					st.Columns[i].Key = true
				}
				st.FullRow = true
			} else if pub.Update || pub.Delete {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
					Message: fmt.Sprintf("table %s.%s has no primary key or replica identity, so its updates and deletes cannot be replicated", o.Schema, n),
					Hint:    "Add a primary key, set REPLICA IDENTITY FULL or USING INDEX, or replicate it with publish => 'insert'."}
			}
		}
		tables = append(tables, st)
	}
	if err := o.TableOptions.validate(tables); err != nil {
		return nil, err
	}

	if o.Reset {
		if err := r.drop(ctx, conn, o.Slot, o.Publication, false); err != nil {
			return nil, err
		}
	}

	slot, slotExists, err := readSlot(ctx, conn, o.Slot)
	if err != nil {
		return nil, err
	}
	if slotExists {
		if err := checkSlotUsable(ctx, conn, o.Slot, slot); err != nil {
			return nil, err
		}
	}
	state, hasState, err := r.dest.State(ctx, o.Slot)
	if err != nil {
		return nil, fmt.Errorf("destination: reading state: %w", err)
	}
	// A slot without destination state never finished its first
	// init_replication (the snapshot and the state commit together). Its
	// exported snapshot is gone, so a snapshot needs a new slot.
	if slotExists && !hasState && o.PersistSnapshots {
		r.notify(o.Progress, fmt.Sprintf("slot %s has no completed snapshot in the destination; recreating it", o.Slot))
		if err := dropSlot(ctx, conn, o.Slot); err != nil {
			return nil, err
		}
		slotExists = false
	}

	before, pubExists, err := readPublication(ctx, conn, o.Publication)
	if err != nil {
		return nil, err
	}
	newTables, err := ensurePublication(ctx, conn, o, publishList, pubExists, tables)
	if err != nil {
		return nil, err
	}
	if pubExists {
		pub = before // an existing publication keeps what it publishes
	}

	dataset := o.Dataset
	if dataset == "" && hasState {
		dataset = state.Dataset
	}
	destTables := make([]*Table, len(tables))
	for i, st := range tables {
		destTables[i] = r.destTable(st.Schema, st.Name, o.TableOptions.shape(st.Schema, st.Name, st.Columns), dataset, pub, st.FullRow)
	}

	var repl *pgconn.PgConn
	var snapshotName string
	var consistent uint64
	if !slotExists {
		repl, err = r.connectReplication(ctx)
		if err != nil {
			return nil, err
		}
		defer repl.Close(context.Background())
		action := "NOEXPORT_SNAPSHOT"
		if o.PersistSnapshots {
			action = "EXPORT_SNAPSHOT"
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, o.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
		if err != nil {
			return nil, sourceError("creating replication slot", err)
		}
		snapshotName = res.SnapshotName
		if consistent, err = parseLSN(res.ConsistentPoint); err != nil {
			return nil, err
		}
		r.log.Info().Str("slot", o.Slot).Str("consistent_lsn", res.ConsistentPoint).Msg("created replication slot")
	} else {
		consistent = slot.ConfirmedLSN
		if hasState && state.LSN > consistent {
			consistent = state.LSN
		}
	}

	// Which tables get a snapshot: all of them for a new slot; for an
	// existing slot only the tables this call added to the publication.
	snap := map[*Table]*sourceTable{}
	if o.PersistSnapshots {
		for i, st := range tables {
			if !slotExists || newTables[st.Schema+"."+st.Name] {
				snap[destTables[i]] = st
			}
		}
	}
	// A table added to an existing slot is copied in a fresh snapshot, not
	// at the slot's position, so changes between the two reach it twice.
	// Merges absorb that; appended and multiset rows would be duplicated.
	if slotExists {
		for t := range snap {
			if t.AppendOnly || t.FullRow {
				return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeFeatureNotSupp,
					Message: fmt.Sprintf("cannot snapshot %s into the existing slot %q: the table has no key to merge on, so rows changed during the copy would be duplicated", t.QualifiedSource(), o.Slot),
					Hint:    "Replicate it with its own slot and publication, or re-create this slot with reset => true."}
			}
		}
	}

	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	for _, t := range destTables {
		// Columns the source rewrote are filled by the snapshot, or by the
		// stream's own backfill when it meets the new shape.
		if _, err := tx.EnsureTable(ctx, t); err != nil {
			return nil, fmt.Errorf("destination: creating %s: %w", t.Qualified(), err)
		}
	}
	counts := map[*Table]int64{}
	if len(snap) > 0 {
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
		for _, t := range destTables {
			st, ok := snap[t]
			if !ok {
				continue
			}
			if !slotExists {
				// A re-run can find rows from a snapshot that failed to commit
				// state; the new slot's snapshot replaces them.
				if err := tx.Truncate(ctx, t); err != nil {
					return nil, fmt.Errorf("destination: %w", err)
				}
			}
			n, err := copyTable(ctx, sconn, tx, t, st.Kind, st.Rows, consistent, o.Progress)
			if err != nil {
				return nil, err
			}
			counts[t] = n
		}
		if _, err := sconn.Exec(ctx, "COMMIT"); err != nil {
			return nil, sourceError("ending snapshot transaction", err)
		}
	}

	st := State{Slot: o.Slot, Publication: o.Publication, LSN: consistent, Dataset: o.Dataset}
	if hasState {
		st = state
		st.Publication = o.Publication
		if o.Dataset != "" {
			st.Dataset = o.Dataset
		}
	}
	seen := map[string]bool{}
	for _, q := range st.Tables {
		seen[q] = true
	}
	for _, t := range destTables {
		if !seen[t.Qualified()] {
			st.Tables = append(st.Tables, t.Qualified())
		}
	}
	if err := tx.SaveState(ctx, st); err != nil {
		return nil, fmt.Errorf("destination: saving state: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("destination: commit: %w", err)
	}

	out := make([]InitResult, len(destTables))
	for i, t := range destTables {
		out[i] = InitResult{Table: t.QualifiedSource(), ConsistentLSN: consistent, Slot: o.Slot,
			Publication: o.Publication, Dataset: t.Schema}
		if n, ok := counts[t]; ok {
			n := n
			out[i].SnapshotRows = &n
		}
	}
	return out, nil
}

// ensurePublication creates the publication or adds the missing tables to
// it, and reports which tables it added.
func ensurePublication(ctx context.Context, conn *pgx.Conn, o InitOptions, publish string, exists bool, tables []*sourceTable) (map[string]bool, error) {
	added := map[string]bool{}
	with := fmt.Sprintf(" WITH (publish = %s, publish_via_partition_root = true)", quoteLiteral(publish))
	if !exists {
		// Created empty, then filled: the same path serves a first call and
		// a call that adds tables.
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION "+ident(o.Publication)+with); err != nil {
			return nil, sourceError("creating publication", err)
		}
	}
	have := map[string]bool{}
	if exists {
		pt, err := publicationTables(ctx, conn, o.Publication)
		if err != nil {
			return nil, err
		}
		for _, p := range pt {
			have[p[0]+"."+p[1]] = true
		}
	}
	if o.Tables == nil {
		var inSchema bool
		if exists {
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_namespace pn
				JOIN pg_publication p ON p.oid = pn.pnpubid JOIN pg_namespace n ON n.oid = pn.pnnspid
				WHERE p.pubname = $1 AND n.nspname = $2)`, o.Publication, o.Schema).Scan(&inSchema); err != nil {
				return nil, sourceError("reading publication schemas", err)
			}
		}
		if !inSchema {
			if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident(o.Publication)+" ADD TABLES IN SCHEMA "+ident(o.Schema)); err != nil {
				return nil, sourceError("adding schema to publication", err)
			}
		}
		for _, t := range tables {
			if !have[t.Schema+"."+t.Name] {
				added[t.Schema+"."+t.Name] = true
			}
		}
		return added, nil
	}
	var add []string
	for _, t := range tables {
		if have[t.Schema+"."+t.Name] {
			continue
		}
		add = append(add, ident(t.Schema, t.Name))
		added[t.Schema+"."+t.Name] = true
	}
	if len(add) > 0 {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident(o.Publication)+" ADD TABLE "+strings.Join(add, ", ")); err != nil {
			return nil, sourceError("adding tables to publication", err)
		}
	}
	return added, nil
}

// destTable maps a source table to its destination table.
func (r *Replicator) destTable(schema, name string, cols []Column, dataset string, pub publication, fullRow bool) *Table {
	t := &Table{SourceSchema: schema, SourceName: name, Schema: schema, Name: name, Columns: cols,
		HasDeletedTS: pub.Delete, FullRow: fullRow}
	if dataset != "" {
		t.Schema = dataset
	}
	hasKey := false
	for _, c := range cols {
		hasKey = hasKey || c.Key
	}
	t.AppendOnly = pub.insertOnly() || !hasKey
	return t
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

// drop removes the slot and publication, and the destination's state for
// the slot (and its tables when dropTables). Missing pieces are skipped.
func (r *Replicator) drop(ctx context.Context, conn *pgx.Conn, slot, pub string, dropTables bool) error {
	s, ok, err := readSlot(ctx, conn, slot)
	if err != nil {
		return err
	}
	if ok {
		if s.Active {
			return Errorf(CodeObjectInUse, "replication slot %q is active; stop its consumer first", slot)
		}
		if err := dropSlot(ctx, conn, slot); err != nil {
			return err
		}
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+ident(pub)); err != nil {
		return sourceError("dropping publication", err)
	}
	tx, err := r.dest.Begin(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer tx.Rollback(context.Background())
	if dropTables {
		st, ok, err := r.dest.State(ctx, slot)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if ok {
			for _, q := range st.Tables {
				schema, name, _ := strings.Cut(q, ".")
				if err := tx.DropTable(ctx, schema, name); err != nil {
					return fmt.Errorf("destination: dropping %s: %w", q, err)
				}
			}
		}
	}
	if err := tx.DeleteState(ctx, slot); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	return tx.Commit(ctx)
}
