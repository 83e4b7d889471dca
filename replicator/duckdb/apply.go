package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Apply merges a batch into the table with set-based statements: stage the
// text rows, cast them (taking unchanged TOAST values from the current
// rows), delete the keys the batch touches, insert the new versions.
func (t *tx) Apply(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	if len(b.Changes) == 0 {
		return nil
	}
	if tbl.History {
		return t.applyHistory(ctx, tbl, b)
	}
	unchanged := false
	for i := range b.Changes {
		unchanged = unchanged || b.Changes[i].Row.HasUnchanged()
	}
	keys := tbl.KeyIndexes()
	soft := false
	for i := range b.Changes {
		soft = soft || b.Changes[i].Kind == replica.SoftDelete
	}
	target := ident(tbl.Schema, tbl.Name)
	if stagedMerge(tbl, b, unchanged, soft) {
		return t.stageForMerge(ctx, tbl, b)
	}
	// This batch reads the table's current rows: what is staged goes first.
	if err := t.merge(ctx, target); err != nil {
		return err
	}
	stage, release, err := t.stageChanges(tbl, b, unchanged, func(c *replica.Change) (driver.Value, int64) {
		var ts driver.Value
		if c.Kind == replica.SoftDelete || c.Deleted {
			ts = c.CommitTime
		}
		n := int64(c.Count)
		if n < 0 {
			n = -n
		}
		return ts, n
	})
	if err != nil {
		return err
	}
	defer release()
	if tbl.AppendOnly || len(keys) == 0 {
		return t.exec(ctx, insertFromStage(tbl, stage, "WHERE _op <> 'D'"))
	}
	if tbl.FullRow {
		return t.applyFullRow(ctx, tbl, stage)
	}

	// The typed version of the batch, one row per key.
	var typed string
	var exprs []string
	exprs = append(exprs, "_pgcdc_s._op")
	for i, c := range tbl.Columns {
		e := castExpr(c, fmt.Sprintf("_pgcdc_s.c%d", i))
		if unchanged {
			e = fmt.Sprintf("CASE WHEN _pgcdc_s._u IS NOT NULL AND substr(_pgcdc_s._u, %d, 1) = '1' THEN _pgcdc_o.%s ELSE %s END", i+1, ident(c.Name), e)
		}
		exprs = append(exprs, e+" AS "+ident(c.Name))
	}
	exprs = append(exprs, "_pgcdc_s._lsn AS "+ident(replica.LSNColumn))
	if tbl.HasDeletedTS {
		exprs = append(exprs, "_pgcdc_s._ts AS "+ident(replica.DeletedTSColumn))
	}
	from := stage + " AS _pgcdc_s"
	if unchanged {
		var on []string
		for j, k := range keys {
			on = append(on, fmt.Sprintf("_pgcdc_o.%s = %s", ident(tbl.Columns[k].Name), castExpr(tbl.Columns[k], fmt.Sprintf("_pgcdc_s._l%d", j))))
		}
		from += fmt.Sprintf(" LEFT JOIN %s AS _pgcdc_o ON _pgcdc_s._u IS NOT NULL AND %s", target, strings.Join(on, " AND "))
	}
	typed = "(SELECT " + strings.Join(exprs, ", ") + " FROM " + from + ")"
	if unchanged {
		// Unchanged values must be read before the old rows are deleted.
		t.stage++
		name := fmt.Sprintf("_pgcdc_typed_%d", t.stage)
		if err := t.exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS %s", name, typed[1:len(typed)-1])); err != nil {
			return err
		}
		defer t.exec(context.Background(), "DROP TABLE IF EXISTS temp.main."+name)
		typed = "temp.main." + name
	}

	return t.mergeTyped(ctx, tbl, typed, soft)
}

func unchangedMask(u []bool) driver.Value {
	if u == nil {
		return nil
	}
	var sb strings.Builder
	any := false
	for _, x := range u {
		if x {
			sb.WriteByte('1')
			any = true
		} else {
			sb.WriteByte('0')
		}
	}
	if !any {
		return nil
	}
	return sb.String()
}

// Backfill sets columns cols of existing rows, matched by key, from rows
// holding the key values followed by the cols' values.
func (t *tx) Backfill(ctx context.Context, tbl *replica.Table, cols []int, rows []replica.Row) error {
	if err := t.mergeAll(ctx); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	keys := tbl.KeyIndexes()
	order := append(append([]int{}, keys...), cols...)
	convs := converters(tbl)
	specs := make([]colSpec, len(order))
	for i := range order {
		specs[i] = colSpec{fmt.Sprintf("v%d", i), duckdb.TYPE_VARCHAR}
	}
	infos, err := columnInfos(specs...)
	if err != nil {
		return err
	}
	vals := make([][]driver.Value, len(rows))
	for r, row := range rows {
		vals[r] = make([]driver.Value, len(order))
		for i, col := range order {
			if vals[r][i], err = convs.text(tbl, col, row.Values[i]); err != nil {
				return err
			}
		}
	}
	src, release := stage(infos, vals)
	defer release()
	target := ident(tbl.Schema, tbl.Name)
	var set, on []string
	for i, col := range order {
		c := tbl.Columns[col]
		v := castExpr(c, fmt.Sprintf("_pgcdc_b.v%d", i))
		if i < len(keys) {
			on = append(on, fmt.Sprintf("%s.%s = %s", target, ident(c.Name), v))
		} else {
			set = append(set, fmt.Sprintf("%s = %s", ident(c.Name), v))
		}
	}
	if tbl.History {
		// The source rewrote the current rows; earlier versions keep what
		// they held.
		on = append(on, fmt.Sprintf("%s.%s IS NULL", target, ident(replica.ValidToColumn)))
	}
	t.modified[target] = true
	return t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s FROM %s AS _pgcdc_b WHERE %s",
		target, strings.Join(set, ", "), src, strings.Join(on, " AND ")))
}

// applyFullRow applies row counts to a table without a key: Remove deletes
// that many live rows equal to the staged one, Append inserts that many
// copies, SoftDelete marks that many live equal rows deleted. Equal rows are
// interchangeable, so which ones go does not matter; that exactly n go does.
func (t *tx) applyFullRow(ctx context.Context, tbl *replica.Table, stage string) error {
	target := ident(tbl.Schema, tbl.Name)
	t.modified[target] = true
	exprs := []string{"row_number() OVER () AS _id", "_op", "_n", "_lsn", "_ts"}
	var match, cols []string
	for i, c := range tbl.Columns {
		n := ident(c.Name)
		exprs = append(exprs, castExpr(c, fmt.Sprintf("c%d", i))+" AS "+n)
		match = append(match, fmt.Sprintf("%s.%s IS NOT DISTINCT FROM _pgcdc_m.%s", target, n, n))
		cols = append(cols, n)
	}
	typed := "(SELECT " + strings.Join(exprs, ", ") + " FROM " + stage + ")"
	live := ""
	if tbl.HasDeletedTS {
		live = fmt.Sprintf(" AND %s.%s IS NULL", target, ident(replica.DeletedTSColumn))
	}
	victims := func(op replica.ChangeKind) string {
		return fmt.Sprintf(`SELECT rid, ts, lsn FROM (
		SELECT %s.rowid AS rid, _pgcdc_m._ts AS ts, _pgcdc_m._lsn AS lsn, _pgcdc_m._n AS n,
			row_number() OVER (PARTITION BY _pgcdc_m._id ORDER BY %s.rowid) AS rn
		FROM %s JOIN %s AS _pgcdc_m ON %s%s WHERE _pgcdc_m._op = '%c') WHERE rn <= n`,
			target, target, target, typed, strings.Join(match, " AND "), live, op)
	}
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE rowid IN (SELECT rid FROM (%s))", target, victims(replica.Remove))); err != nil {
		return err
	}
	list := strings.Join(cols, ", ")
	if err := t.exec(ctx, fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT %s, _pgcdc_m._lsn FROM %s AS _pgcdc_m, generate_series(1, _pgcdc_m._n) WHERE _pgcdc_m._op = 'A'",
		target, list, ident(replica.LSNColumn), list, typed)); err != nil {
		return err
	}
	if !tbl.HasDeletedTS {
		return nil
	}
	return t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = _pgcdc_v.ts, %s = _pgcdc_v.lsn FROM (%s) AS _pgcdc_v WHERE %s.rowid = _pgcdc_v.rid",
		target, ident(replica.DeletedTSColumn), ident(replica.LSNColumn), victims(replica.SoftDelete), target))
}

// stageChanges stages a batch's changes as text rows: each change's kind,
// LSN, the timestamp and count that meta gives it, its unchanged-TOAST
// mask, with lookup the key that supplies its unchanged values, then its
// values rewritten for DuckDB's casts.
func (t *tx) stageChanges(tbl *replica.Table, b *replica.Batch, lookup bool, meta func(*replica.Change) (ts driver.Value, n int64)) (string, func(), error) {
	keys := tbl.KeyIndexes()
	convs := converters(tbl)
	return t.stageRows(tbl, len(b.Changes), lookup, func(app func(...driver.Value) error) error {
		for i := range b.Changes {
			c := &b.Changes[i]
			ts, n := meta(c)
			vals := make([]driver.Value, 0, len(c.Row.Values)+len(keys)+5)
			vals = append(vals, string(c.Kind), int64(c.LSN), ts, unchangedMask(c.Row.Unchanged), n)
			if lookup {
				for j, k := range keys {
					v := c.Row.Values[k]
					if c.Lookup != nil {
						v = c.Lookup[j]
					}
					tv, err := convs.text(tbl, k, v)
					if err != nil {
						return err
					}
					vals = append(vals, tv)
				}
			}
			vals, err := convs.appendRow(vals, tbl, c.Row.Values)
			if err != nil {
				return err
			}
			if err := app(vals...); err != nil {
				return err
			}
		}
		return nil
	})
}
