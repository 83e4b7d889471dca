package replicator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// VerifyOptions are verify_replication's arguments.
type VerifyOptions struct {
	Slot string
	// Table limits the check to one table, named as its source ("orders",
	// "shop.orders") or its replica; "" checks every table of the slot.
	Table string
	// SoftDelete is the delete_mode the slot is replicated with: verify
	// drains the slot before it compares, and must apply deletes the same
	// way replicate() does.
	SoftDelete bool
	Progress   func(string)
}

// VerifyResult is one row of verify_replication().
type VerifyResult struct {
	Table                   string // source table, schema-qualified
	Equal                   bool
	SourceRows, ReplicaRows int64
	// DifferingKeys are the first keys (at most MaxDifferingKeys) whose rows
	// differ, are missing from the replica, or exist only in the replica.
	DifferingKeys []string
}

// MaxDifferingKeys caps VerifyResult.DifferingKeys.
const MaxDifferingKeys = 10

// Verify compares the slot's replica tables with the source at one
// consistent point.
//
// The point is a snapshot the source exports while it creates a temporary
// logical slot: that snapshot sees exactly the transactions whose commit
// record starts before the slot's consistent point C, and decoding sends
// the others (the guarantee init_replication's snapshot relies on too).
// The replica is then drained to exactly there, no further, and compared
// with the slot held so that no other call moves it; so both sides show
// the same transactions, and changes made while verify runs are neither
// compared nor reported.
//
// Each table is read once on each side: rows are grouped into buckets by a
// prefix of the md5 of their key's text, and each bucket's row count and
// sum of row hashes are computed in SQL, so only the bucket summaries leave
// either database. Only buckets that differ are read row by row, to name
// the differing keys.
func (r *Replicator) Verify(ctx context.Context, o VerifyOptions) ([]VerifyResult, error) {
	if err := validateSlot(o.Slot); err != nil {
		return nil, err
	}
	ver, ok := r.dest.(replica.Verifier)
	if !ok {
		return nil, Errorf(CodeFeatureNotSupp, "verify_replication is not supported by this destination")
	}
	state, ok, err := r.dest.State(ctx, o.Slot)
	if err != nil {
		return nil, fmt.Errorf("destination: reading state: %w", err)
	}
	if !ok {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeUndefinedObject,
			Message: fmt.Sprintf("replication slot %q has no replica in this destination", o.Slot),
			Hint:    "Create it with init_replication()."}
	}
	if !state.Ready {
		return nil, Errorf(CodePrerequisite, "init_replication for slot %q did not complete", o.Slot)
	}
	if r.pipe(o.Slot) != nil {
		// Verify drains the slot to exactly its snapshot's point, which a
		// pipeline streaming past it would not allow.
		return nil, &pgconn.PgError{Severity: "ERROR", Code: CodeObjectInUse,
			Message: fmt.Sprintf("slot %q replicates continuously, so verify_replication cannot hold it at one point", o.Slot),
			Hint:    "Call stop_replication() first, verify, then start_replication() again."}
	}
	tables, err := verifyTables(state, o.Table)
	if err != nil {
		return nil, err
	}

	// The snapshot, and its position.
	repl, err := r.connectReplication(ctx)
	if err != nil {
		return nil, err
	}
	replOpen := true
	defer func() {
		if replOpen {
			repl.Close(context.Background())
		}
	}()
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := "pgcdc_verify_" + hex.EncodeToString(suffix[:])
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, tmp, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return nil, sourceError("creating a temporary slot for verify's snapshot", err)
	}
	point, err := parseLSN(res.ConsistentPoint)
	if err != nil {
		return nil, err
	}
	src, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.Background())
	stx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, sourceError("starting verify's snapshot", err)
	}
	defer stx.Rollback(context.Background())
	for _, q := range []string{"SET TRANSACTION SNAPSHOT " + quoteLiteral(res.SnapshotName),
		"SET LOCAL DateStyle = ISO", "SET LOCAL extra_float_digits = 1", "SET LOCAL IntervalStyle = postgres"} {
		if _, err := stx.Exec(ctx, q); err != nil {
			return nil, sourceError("starting verify's snapshot", err)
		}
	}
	// The snapshot is imported; the temporary slot can go, and with it the
	// WAL it held.
	repl.Close(ctx)
	replOpen = false

	// The replica, drained to exactly that point. The snapshot sees the
	// transactions whose commit record starts before the point, and
	// decoding sends the ones whose commit record starts at or after it:
	// so the stream stops at point-1, where a transaction committing
	// exactly at the point is not applied. The replica's position is then
	// point-1, or the point itself when the last transaction ends there.
	limit := point - 1
	if state.LSN > point {
		return nil, Errorf(CodePrerequisite, "the replica of slot %q is at %s, past verify's snapshot at %s", o.Slot, FormatLSN(state.LSN), FormatLSN(point))
	}
	if state.LSN < limit {
		_, err := r.Replicate(ctx, ReplicateOptions{Slot: o.Slot, Publication: state.Publication, BatchSize: 1000,
			FlushSlot: true, SoftDelete: o.SoftDelete, Progress: o.Progress, stopAt: limit})
		if err != nil {
			return nil, err
		}
	}
	release, err := r.acquire(o.Slot)
	if err != nil {
		return nil, err
	}
	defer release()
	rtx, err := ver.BeginVerify(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer rtx.Close()
	// The replica's transaction began after the drain committed, and the
	// position only grows: if it is still there now, it was then.
	if state, _, err = r.dest.State(ctx, o.Slot); err != nil {
		return nil, fmt.Errorf("destination: reading state: %w", err)
	}
	if state.LSN != limit && state.LSN != point {
		return nil, Errorf(CodeObjectInUse, "the replica of slot %q moved to %s while verify compared it at %s; run verify_replication again", o.Slot, FormatLSN(state.LSN), FormatLSN(point))
	}
	pub, _, err := readPublication(ctx, stx.Conn(), state.Publication)
	if err != nil {
		return nil, err
	}

	var out []VerifyResult
	for _, ts := range tables {
		st, ok, err := describeOID(ctx, stx.Conn(), ts.OID)
		if err != nil {
			return nil, err
		}
		if !ok {
			r.notify(o.Progress, fmt.Sprintf("verify %s: source table %s no longer exists, skipped", o.Slot, ts.Source))
			continue
		}
		cols := shapeColumns(st.Columns, ts.IncludeColumns, nil)
		var compared []replica.Column
		for _, c := range cols {
			if _, hinted := ts.Hints[c.Name]; hinted {
				r.notify(o.Progress, fmt.Sprintf("verify %s: column %s of %s has a type hint and is not compared", o.Slot, c.Name, ts.Source))
				continue
			}
			compared = append(compared, c)
		}
		dt := r.destTable(ts.OID, st.Schema, st.Name, compared, state.Dataset, pub, st.FullRow, state.WriteDisposition)
		estimate := st.Rows
		if estimate <= 0 {
			// Never analyzed: guess from the size, at 100 bytes a row.
			var size int64
			if err := stx.QueryRow(ctx, "SELECT pg_relation_size($1)", ts.OID).Scan(&size); err == nil {
				estimate = float64(size) / 100
			}
		}
		v := tableVerify{src: stx, rep: rtx, ver: ver, table: dt, kind: st.Kind, dest: ts.Dest}
		res, err := v.run(ctx, estimate)
		if err != nil {
			return nil, err
		}
		res.Table = st.Schema + "." + st.Name
		if !res.Equal {
			r.notify(o.Progress, fmt.Sprintf("verify %s: %s differs from its replica %s", o.Slot, res.Table, ts.Dest))
		}
		out = append(out, res)
	}
	return out, nil
}

// verifyTables picks the slot's tables that name designates: all of them
// when it is empty.
func verifyTables(st replica.State, name string) ([]replica.TableState, error) {
	if name == "" {
		return st.Tables, nil
	}
	for _, match := range []func(t replica.TableState) bool{
		func(t replica.TableState) bool { return t.Source.String() == name },
		func(t replica.TableState) bool { return t.Source.Name == name },
		func(t replica.TableState) bool { return t.Dest.String() == name },
	} {
		var found []replica.TableState
		for _, t := range st.Tables {
			if match(t) {
				found = append(found, t)
			}
		}
		switch len(found) {
		case 0:
		case 1:
			return found, nil
		default:
			return nil, Errorf(CodeInvalidParameter, "table_name %q matches %d tables of slot %q; qualify it with its schema", name, len(found), st.Slot)
		}
	}
	return nil, Errorf(CodeUndefinedTable, "slot %q does not replicate table %q", st.Slot, name)
}

// tableVerify compares one table.
type tableVerify struct {
	src   pgx.Tx
	rep   replica.VerifyTx
	ver   replica.Verifier
	table *replica.Table // the compared columns
	kind  byte
	dest  replica.TableName
}

// maxDrillBuckets bounds how many differing buckets are read row by row.
const maxDrillBuckets = 32

// bucket is one bucket's summary.
type bucket struct{ rows, sum string }

func (v *tableVerify) run(ctx context.Context, estimate float64) (VerifyResult, error) {
	// About a thousand rows per bucket, up to 16^5 buckets.
	digits := 1
	for n := estimate / 1000; n >= 16 && digits < 5; n /= 16 {
		digits++
	}
	srcKey, srcRow := v.exprs(true)
	repKey, repRow := v.exprs(false)
	srcFrom, repFrom := v.sourceFrom(), v.replicaFrom()
	summary := func(key, row, from string, hash func(string) string) string {
		return fmt.Sprintf("SELECT CAST(substr(md5(%[1]s), 1, %[4]d) AS VARCHAR), CAST(count(*) AS VARCHAR), CAST(sum(%[3]s) AS VARCHAR) FROM %[2]s GROUP BY 1",
			key, from, hash("md5("+row+")"), digits)
	}
	srcRows, err := sourceStrings(ctx, v.src, summary(srcKey, srcRow, srcFrom, replica.PostgresHash60))
	if err != nil {
		return VerifyResult{}, sourceError("reading "+v.table.QualifiedSource(), err)
	}
	repRows, err := v.rep.Strings(ctx, summary(repKey, repRow, repFrom, v.ver.Hash60))
	if err != nil {
		return VerifyResult{}, fmt.Errorf("destination: reading %s: %w", v.dest, err)
	}
	var res VerifyResult
	srcB, repB := buckets(srcRows, &res.SourceRows), buckets(repRows, &res.ReplicaRows)
	var differ []string
	for b, s := range srcB {
		if repB[b] != s {
			differ = append(differ, b)
		}
	}
	for b := range repB {
		if _, ok := srcB[b]; !ok {
			differ = append(differ, b)
		}
	}
	res.Equal = len(differ) == 0
	if res.Equal {
		return res, nil
	}
	slices.Sort(differ)
	for len(differ) > 0 && len(res.DifferingKeys) < MaxDifferingKeys {
		n := min(len(differ), maxDrillBuckets)
		part := differ[:n]
		differ = differ[n:]
		var list []string
		for _, b := range part {
			list = append(list, quoteLiteral(b))
		}
		rows := func(key, row, from string) string {
			return fmt.Sprintf("SELECT %[1]s, md5(%[2]s) FROM %[3]s %[4]s substr(md5(%[1]s), 1, %[5]d) IN (%[6]s)",
				key, row, from, whereOrAnd(from), digits, strings.Join(list, ", "))
		}
		s, err := sourceStrings(ctx, v.src, rows(srcKey, srcRow, srcFrom))
		if err != nil {
			return res, sourceError("reading "+v.table.QualifiedSource(), err)
		}
		d, err := v.rep.Strings(ctx, rows(repKey, repRow, repFrom))
		if err != nil {
			return res, fmt.Errorf("destination: reading %s: %w", v.dest, err)
		}
		res.DifferingKeys = append(res.DifferingKeys, differingKeys(s, d)...)
	}
	slices.Sort(res.DifferingKeys)
	res.DifferingKeys = slices.Compact(res.DifferingKeys)
	if len(res.DifferingKeys) > MaxDifferingKeys {
		res.DifferingKeys = res.DifferingKeys[:MaxDifferingKeys]
	}
	return res, nil
}

func whereOrAnd(from string) string {
	if strings.Contains(from, " WHERE ") {
		return "AND"
	}
	return "WHERE"
}

// exprs are the key's and the row's text on one side. A value renders as
// "v" with quotes doubled, NULL as n, joined by commas: equal texts mean
// equal values. A table without a key is keyed by its whole row.
func (v *tableVerify) exprs(source bool) (key, row string) {
	var keys, all []string
	for _, c := range v.table.Columns {
		col := ident(c.Name)
		e, rep := v.ver.TextExprs(c, col)
		if !source {
			e = rep
		}
		e = fmt.Sprintf(`COALESCE('"' || replace(%s, '"', '""') || '"', 'n')`, e)
		all = append(all, e)
		if c.Key {
			keys = append(keys, e)
		}
	}
	if len(all) == 0 {
		all = []string{"''"}
	}
	row = strings.Join(all, " || ',' || ")
	if len(keys) == 0 {
		return row, row
	}
	return strings.Join(keys, " || ',' || "), row
}

func (v *tableVerify) sourceFrom() string {
	only := "ONLY "
	if v.kind == 'p' {
		only = "" // published through its root: the partitions' rows
	}
	return only + ident(v.table.SourceSchema, v.table.SourceName)
}

func (v *tableVerify) replicaFrom() string {
	var where []string
	if v.table.HasDeletedTS {
		// Soft-deleted rows are gone at the source.
		where = append(where, ident(replica.DeletedTSColumn)+" IS NULL")
	}
	if v.table.History {
		// A history table's current versions are the source's rows.
		where = append(where, ident(replica.ValidToColumn)+" IS NULL")
	}
	from := ident(v.dest.Schema, v.dest.Name)
	if len(where) > 0 {
		from += " WHERE " + strings.Join(where, " AND ")
	}
	return from
}

func buckets(rows [][]*string, total *int64) map[string]bucket {
	m := make(map[string]bucket, len(rows))
	for _, r := range rows {
		b := bucket{rows: deref(r[1]), sum: deref(r[2])}
		m[deref(r[0])] = b
		var n int64
		fmt.Sscan(b.rows, &n)
		*total += n
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// differingKeys compares the (key, row hash) pairs of the same buckets on
// both sides, as multisets, and returns the keys whose rows differ.
func differingKeys(src, rep [][]*string) []string {
	count := map[[2]string]int{}
	for _, r := range src {
		count[[2]string{deref(r[0]), deref(r[1])}]++
	}
	for _, r := range rep {
		count[[2]string{deref(r[0]), deref(r[1])}]--
	}
	seen := map[string]bool{}
	var out []string
	for k, n := range count {
		if n != 0 && !seen[k[0]] {
			seen[k[0]] = true
			out = append(out, displayKey(k[0]))
		}
	}
	slices.Sort(out)
	return out
}

// displayKey turns a key's text ("1" or "a","b" with NULL as n) into what
// a user reads: 1, or (a,b) for a key of several columns.
func displayKey(k string) string {
	var vals []string
	for i := 0; i < len(k); {
		if k[i] == 'n' {
			vals = append(vals, "NULL")
			i++
		} else {
			var b strings.Builder
			i++ // opening quote
			for i < len(k) {
				if k[i] == '"' {
					if i+1 < len(k) && k[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(k[i])
				i++
			}
			vals = append(vals, b.String())
		}
		if i < len(k) && k[i] == ',' {
			i++
		}
	}
	if len(vals) == 1 {
		return vals[0]
	}
	return "(" + strings.Join(vals, ",") + ")"
}

// sourceStrings runs q in the source's snapshot; every column is text.
func sourceStrings(ctx context.Context, tx pgx.Tx, q string) ([][]*string, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]*string
	n := len(rows.FieldDescriptions())
	for rows.Next() {
		r := make([]*string, n)
		ptrs := make([]any, n)
		for i := range r {
			ptrs[i] = &r[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
