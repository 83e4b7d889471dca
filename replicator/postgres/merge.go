package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Most batches are plain upserts and deletes on a key: every value is
// present, nothing is soft-deleted. Those are merged without a staging
// table. Each column travels as one parameter, an array literal of the
// source's text values that the column type's own input function reads,
// and unnest turns the arrays back into rows. The statements' text depends
// only on the table's shape, so the connection prepares each once and
// reuses its plan for every batch and transaction, and no temporary table
// is created, truncated or dropped per batch.

// plainMaxBytes is the largest batch, in the bytes the stream counted,
// that takes the array path. Its parameters are built whole and copied
// twice more on their way out (pgx encodes each, then the Bind message),
// where COPY into a staging table streams the batch in 64 kB messages: a
// batch of large rows, which the byte budget cut short, goes that way.
const plainMaxBytes = 2 << 20

// plainMerge reports whether b takes the array path: a keyed table (or one
// that only appends), not a History or FullRow table, a batch of at most
// plainMaxBytes, and no change that needs the destination's current row
// (unchanged TOAST) or a soft delete.
func plainMerge(tbl *replica.Table, b *replica.Batch) bool {
	if tbl.History || tbl.FullRow || b.Bytes > plainMaxBytes {
		return false
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		switch {
		case c.Kind != replica.Upsert && c.Kind != replica.Delete && c.Kind != replica.Append,
			c.Deleted, c.Row.HasUnchanged():
			return false
		}
	}
	return true
}

// arrayColumn reports whether a column's values are arrays themselves:
// those travel as text[] and are cast one by one, since an array of arrays
// is a two-dimensional array, not a list of arrays.
func arrayColumn(c replica.Column) bool {
	return c.ElemOID != 0 || c.Dims > 0 || strings.HasSuffix(columnType(c), "]")
}

// unnested is the value of column c from parameter n, one row per array
// element: unnest in the select list, where a composite element stays one
// value (in FROM it would become one column per field), and where several
// unnests step together.
func unnested(n int, c replica.Column) string {
	typ := columnType(c)
	if arrayColumn(c) {
		return fmt.Sprintf("unnest($%d::text::text[])::%s", n, typ)
	}
	return fmt.Sprintf("unnest($%d::text::%s[])", n, typ)
}

// arrayLiteral appends v as an element of an array literal: NULL, or the
// value double-quoted with backslashes and double quotes escaped, which
// array_in hands to the element type's input function as it was.
func arrayLiteral(buf *bytes.Buffer, v []byte) {
	if v == nil {
		buf.WriteString("NULL")
		return
	}
	buf.WriteByte('"')
	for _, b := range v {
		if b == '"' || b == '\\' {
			buf.WriteByte('\\')
		}
		buf.WriteByte(b)
	}
	buf.WriteByte('"')
}

// columnArrays builds one array literal per column of cols (indexes into
// tbl.Columns) from the values of the changes pick selects.
func columnArrays(cols []int, changes []replica.Change, pick func(*replica.Change) bool) []any {
	bufs := make([]bytes.Buffer, len(cols))
	for j := range bufs {
		bufs[j].WriteByte('{')
	}
	first := true
	for i := range changes {
		c := &changes[i]
		if !pick(c) {
			continue
		}
		for j, col := range cols {
			if !first {
				bufs[j].WriteByte(',')
			}
			arrayLiteral(&bufs[j], c.Row.Values[col])
		}
		first = false
	}
	args := make([]any, len(cols))
	for j := range bufs {
		bufs[j].WriteByte('}')
		args[j] = bufs[j].Bytes()
	}
	return args
}

// applyPlain merges a batch plainMerge accepted. Deleted keys go first;
// then the upserted rows come in with INSERT ... ON CONFLICT DO UPDATE
// where the table has its key as primary key, which updates a row that
// exists in place (a HOT update when the page has room, so a key updated
// again and again does not pile up index entries and dead rows that every
// later lookup of it walks), or, while the key is not built yet (a table
// this transaction created), the rows of replaced keys are deleted too and
// the rows inserted. Both statements go in one round trip.
func (t *tx) applyPlain(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	upsert, err := t.hasKey(ctx, tbl)
	if err != nil {
		return err
	}
	var queue pgx.Batch
	if q, args := plainDelete(tbl, b, upsert); q != "" {
		queue.Queue(q, args...)
	}
	if q, args := plainInsert(tbl, b, upsert); q != "" {
		queue.Queue(q, args...)
	}
	return t.sendBatch(ctx, &queue)
}

// hasKey reports whether tbl is merged on a key that the destination table
// has as its primary key, which ON CONFLICT can then name. It asks once per
// transaction.
func (t *tx) hasKey(ctx context.Context, tbl *replica.Table) (bool, error) {
	keys := tbl.KeyIndexes()
	if tbl.AppendOnly || len(keys) == 0 {
		return false, nil
	}
	name := tbl.TableName()
	if _, pending := t.pendingKeys[name]; pending {
		return false, nil // built at commit
	}
	if ok, known := t.keys[name]; known {
		return ok, nil
	}
	want := make([]string, len(keys))
	for i, k := range keys {
		want[i] = tbl.Columns[k].Name
	}
	have, err := t.primaryKey(ctx, ident(name.Schema, name.Name))
	if err != nil {
		return false, err
	}
	ok := slices.Equal(want, have)
	t.keys[name] = ok
	return ok, nil
}

// plainDelete is the DELETE of the rows whose keys the batch deletes, and
// also of those it replaces when upsert is false; "" when there are none.
func plainDelete(tbl *replica.Table, b *replica.Batch, upsert bool) (string, []any) {
	keys := tbl.KeyIndexes()
	if tbl.AppendOnly || len(keys) == 0 {
		return "", nil
	}
	gone := func(c *replica.Change) bool { return c.Kind == replica.Delete || (!upsert && c.Kind == replica.Upsert) }
	if !slices.ContainsFunc(b.Changes, func(c replica.Change) bool { return gone(&c) }) {
		return "", nil
	}
	target := ident(tbl.Schema, tbl.Name)
	args := columnArrays(keys, b.Changes, gone)
	if k := tbl.Columns[keys[0]]; len(keys) == 1 && !arrayColumn(k) {
		// A join would also build a whole-row copy of each key for
		// EvalPlanQual; = ANY is one index scan over the sorted keys.
		return fmt.Sprintf("DELETE FROM %s WHERE %s = ANY ($1::text::%s[])", target, ident(k.Name), columnType(k)), args
	}
	vals := make([]string, len(keys))
	match := make([]string, len(keys))
	for j, k := range keys {
		vals[j] = fmt.Sprintf("%s AS c%d", unnested(j+1, tbl.Columns[k]), j)
		match[j] = fmt.Sprintf("d.%s = k.c%d", ident(tbl.Columns[k].Name), j)
	}
	return fmt.Sprintf("DELETE FROM %s d USING (SELECT %s) k WHERE %s", target, strings.Join(vals, ", "), strings.Join(match, " AND ")), args
}

// plainInsert is the INSERT of the rows the batch upserts or appends, ""
// when it has none. With upsert, a row whose key exists replaces its
// values and clears _pg_deleted_ts, as a delete and insert would.
func plainInsert(tbl *replica.Table, b *replica.Batch, upsert bool) (string, []any) {
	all := make([]int, len(tbl.Columns))
	for i := range all {
		all[i] = i
	}
	insert := func(c *replica.Change) bool { return c.Kind != replica.Delete }
	args := columnArrays(all, b.Changes, insert)
	var lsns bytes.Buffer
	lsns.WriteByte('{')
	for i := range b.Changes {
		c := &b.Changes[i]
		if !insert(c) {
			continue
		}
		if lsns.Len() > 1 {
			lsns.WriteByte(',')
		}
		lsns.WriteString(strconv.FormatUint(c.LSN, 10))
	}
	lsns.WriteByte('}')
	if lsns.Len() == 2 {
		return "", nil // only deletes
	}
	args = append(args, lsns.String())
	cols := make([]string, 0, len(tbl.Columns)+1)
	vals := make([]string, 0, len(tbl.Columns)+1)
	for i, c := range tbl.Columns {
		cols, vals = append(cols, ident(c.Name)), append(vals, unnested(i+1, c))
	}
	cols = append(cols, ident(replica.LSNColumn))
	vals = append(vals, fmt.Sprintf("unnest($%d::text::bigint[])", len(tbl.Columns)+1))
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s", ident(tbl.Schema, tbl.Name), strings.Join(cols, ", "), strings.Join(vals, ", "))
	if !upsert {
		return q, args
	}
	var key, set []string
	for _, k := range tbl.KeyIndexes() {
		key = append(key, ident(tbl.Columns[k].Name))
	}
	for _, c := range cols {
		set = append(set, c+" = EXCLUDED."+c)
	}
	if tbl.HasDeletedTS {
		set = append(set, ident(replica.DeletedTSColumn)+" = NULL")
	}
	return q + fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(key, ", "), strings.Join(set, ", ")), args
}
