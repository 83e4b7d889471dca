package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// A merge costs DuckDB a scan of the whole target table, however few keys
// the batch holds: merging every batch of target_batch_size changes made a
// drain of a large table scan it thousands of times. So a transaction
// appends the batches of a keyed table to a staging table, and merges them
// once, when it commits, or before anything else reads or reshapes the
// table, or when what it holds staged reaches mergeBytes.
//
// target_batch_size still bounds the changes the stream holds in Go; what
// is staged lives in DuckDB, under its memory_limit, and can spill.

// mergeBytes bounds the changes, as the stream counted their bytes, that a
// transaction holds staged before it merges them.
const mergeBytes = 64 << 20

// pending is one table's staged batches: every change of each batch, in
// order, with _seq numbering them across batches so that the merge keeps
// the last change of each key.
type pending struct {
	tbl     *replica.Table
	name    string // a temp table of the transaction's connection
	app     *duckdb.Appender
	batches int
	bytes   int64
}

// stagedMerge says whether Apply stages b for a later merge. Batches that
// need the current rows (unchanged TOAST values, soft deletes that keep a
// row's values) are merged at once, after what is staged for the table.
func stagedMerge(tbl *replica.Table, b *replica.Batch, unchanged, soft bool) bool {
	return !tbl.History && !tbl.AppendOnly && !tbl.FullRow && len(tbl.KeyIndexes()) > 0 && !unchanged && !soft
}

// kinds are the staged _op values, made once.
var kinds = map[replica.ChangeKind]driver.Value{replica.Upsert: "U", replica.Delete: "D", replica.SoftDelete: "S"}

// stageForMerge appends b's changes to tbl's staging table.
func (t *tx) stageForMerge(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	target := ident(tbl.Schema, tbl.Name)
	p := t.pend[target]
	if p != nil && !p.tbl.SameShape(tbl) {
		if err := t.merge(ctx, target); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		var err error
		if p, err = t.newPending(ctx, tbl); err != nil {
			return err
		}
		t.pend[target] = p
		t.pendOrder = append(t.pendOrder, target)
	}
	convs := converters(tbl)
	vals := make([]driver.Value, 0, 4+len(tbl.Columns))
	for i := range b.Changes {
		c := &b.Changes[i]
		var ts driver.Value
		if c.Kind == replica.SoftDelete || c.Deleted {
			ts = c.CommitTime
		}
		t.seq++
		op, ok := kinds[c.Kind]
		if !ok {
			return fmt.Errorf("duckdb: internal error: change kind %q staged for a merge", c.Kind)
		}
		vals = append(vals[:0], t.seq, op, int64(c.LSN), ts)
		for j, v := range c.Row.Values {
			// The appender copies the bytes: no string per value.
			out, err := convs.convert(tbl, j, v)
			switch {
			case err != nil:
				return err
			case out == nil:
				vals = append(vals, nil) // NULL, not an empty []byte
			default:
				vals = append(vals, out)
			}
		}
		if err := p.app.AppendRow(vals...); err != nil {
			return fmt.Errorf("duckdb: staging changes to %s: %w", tbl.Qualified(), err)
		}
	}
	p.batches++
	p.bytes += b.Bytes
	t.pendBytes += b.Bytes
	t.modified[target] = true
	if t.pendBytes >= mergeBytes {
		return t.mergeAll(ctx)
	}
	return nil
}

func (t *tx) newPending(ctx context.Context, tbl *replica.Table) (*pending, error) {
	t.stage++
	// The merge casts the staged columns as they are now, whatever later
	// becomes of the description.
	shape := *tbl
	shape.Columns = slices.Clone(tbl.Columns)
	p := &pending{tbl: &shape, name: fmt.Sprintf("_pgcdc_pending_%d", t.stage)}
	cols := []string{"_seq BIGINT", "_op VARCHAR", "_lsn BIGINT", "_ts TIMESTAMPTZ"}
	for i := range tbl.Columns {
		cols = append(cols, fmt.Sprintf("c%d VARCHAR", i))
	}
	if err := t.exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s (%s)", p.name, strings.Join(cols, ", "))); err != nil {
		return nil, err
	}
	err := t.conn.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("duckdb: unexpected driver connection %T", dc)
		}
		var err error
		p.app, err = duckdb.NewAppender(conn, "temp", "main", p.name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("duckdb: staging changes to %s: %w", tbl.Qualified(), err)
	}
	return p, nil
}

// mergeAll merges every table's staged changes.
func (t *tx) mergeAll(ctx context.Context) error {
	for len(t.pendOrder) > 0 {
		if err := t.merge(ctx, t.pendOrder[0]); err != nil {
			return err
		}
	}
	return nil
}

// merge merges the changes staged for target, if any: the last change of
// each key, cast to the table's types, replaces the key's row.
func (t *tx) merge(ctx context.Context, target string) error {
	p := t.forget(target)
	if p == nil {
		return nil
	}
	if err := t.mergeStaged(ctx, p); err != nil {
		return &replica.TableError{Table: p.tbl, Err: err}
	}
	return nil
}

func (t *tx) mergeStaged(ctx context.Context, p *pending) error {
	if err := p.app.Close(); err != nil {
		return fmt.Errorf("duckdb: staging changes to %s: %w", p.tbl.Qualified(), err)
	}
	tbl := p.tbl
	staged := "temp.main." + p.name
	exprs := []string{"_op"}
	for i, c := range tbl.Columns {
		exprs = append(exprs, castExpr(c, fmt.Sprintf("c%d", i))+" AS "+ident(c.Name))
	}
	exprs = append(exprs, "_lsn AS "+ident(replica.LSNColumn))
	if tbl.HasDeletedTS {
		exprs = append(exprs, "_ts AS "+ident(replica.DeletedTSColumn))
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + staged
	if p.batches > 1 {
		// Each batch holds one change per key already; across batches the
		// last one wins. Keys are compared as the table's types compare
		// them, as the merge itself does.
		var key []string
		for _, k := range tbl.KeyIndexes() {
			key = append(key, castExpr(tbl.Columns[k], fmt.Sprintf("c%d", k)))
		}
		q += " QUALIFY row_number() OVER (PARTITION BY " + strings.Join(key, ", ") + " ORDER BY _seq DESC) = 1"
	}
	t.stage++
	typed := fmt.Sprintf("temp.main._pgcdc_merge_%d", t.stage)
	if err := t.exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s AS %s", typed[len("temp.main."):], q)); err != nil {
		return err
	}
	if err := t.exec(ctx, "DROP TABLE "+staged); err != nil {
		return err
	}
	if err := t.mergeTyped(ctx, tbl, typed, false); err != nil {
		return err
	}
	return t.exec(ctx, "DROP TABLE "+typed)
}

// discard drops the changes staged for target: a TRUNCATE supersedes them.
func (t *tx) discard(ctx context.Context, target string) error {
	p := t.forget(target)
	if p == nil {
		return nil
	}
	p.app.Close()
	return t.exec(ctx, "DROP TABLE temp.main."+p.name)
}

func (t *tx) forget(target string) *pending {
	p := t.pend[target]
	if p == nil {
		return nil
	}
	delete(t.pend, target)
	t.pendOrder = slices.DeleteFunc(t.pendOrder, func(s string) bool { return s == target })
	t.pendBytes -= p.bytes
	return p
}

// closeAppenders releases the staging appenders of a transaction that ends
// without merging them.
func (t *tx) closeAppenders() {
	for _, p := range t.pend {
		p.app.Close()
	}
	t.pend, t.pendOrder, t.pendBytes = map[string]*pending{}, nil, 0
}

// mergeTyped merges typed, one typed change per key (its _op, the table's
// columns, _pg_lsn and, when the table has it, _pg_deleted_ts), into tbl:
// soft deletes mark the key's row, deletes and upserts remove it, upserts
// insert the new version.
func (t *tx) mergeTyped(ctx context.Context, tbl *replica.Table, typed string, soft bool) error {
	target := ident(tbl.Schema, tbl.Name)
	t.modified[target] = true
	var match []string
	for _, k := range tbl.KeyIndexes() {
		n := ident(tbl.Columns[k].Name)
		match = append(match, fmt.Sprintf("%s.%s = _pgcdc_m.%s", target, n, n))
	}
	on := strings.Join(match, " AND ")
	if tbl.HasDeletedTS && soft {
		if err := t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = _pgcdc_m.%s, %s = _pgcdc_m.%s FROM %s AS _pgcdc_m WHERE _pgcdc_m._op = 'S' AND %s",
			target, ident(replica.DeletedTSColumn), ident(replica.DeletedTSColumn),
			ident(replica.LSNColumn), ident(replica.LSNColumn), typed, on)); err != nil {
			return err
		}
	}
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s USING %s AS _pgcdc_m WHERE _pgcdc_m._op IN ('U', 'D') AND %s", target, typed, on)); err != nil {
		return err
	}
	cols := make([]string, 0, len(tbl.Columns)+2)
	for _, c := range tbl.Columns {
		cols = append(cols, ident(c.Name))
	}
	cols = append(cols, ident(replica.LSNColumn))
	if tbl.HasDeletedTS {
		cols = append(cols, ident(replica.DeletedTSColumn))
	}
	list := strings.Join(cols, ", ")
	return t.exec(ctx, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s AS _pgcdc_m WHERE _pgcdc_m._op = 'U'", target, list, list, typed))
}
