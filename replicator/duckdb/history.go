package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

var _ replica.HistoryTx = (*tx)(nil)

// snapshotTime is the staged _ts of a snapshot row: when a History
// table's loaded versions became valid; NULL for other tables.
func snapshotTime(tbl *replica.Table) driver.Value {
	if tbl.History {
		return tbl.SnapshotTime
	}
	return nil
}

// applyHistory applies a History batch: one change per key and source
// transaction, in commit order. In set-based steps:
//
//  1. the batch is typed, with unchanged TOAST values taken from the
//     current version (of the old key, after a key change), before
//     anything moves;
//  2. a current version opened by the transaction of the key's first
//     change is removed: the same transaction changed the row again after
//     an earlier batch (one version per transaction);
//  3. the other current versions of the batch's keys end at their key's
//     first change;
//  4. each Upsert becomes a version that ends where the next change to its
//     key in the batch begins, or is current.
//
// A batch replayed after a crash never reaches this: the stored position
// skips it, because the data and the position commit together.
func (t *tx) applyHistory(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	keys := tbl.KeyIndexes()
	unchanged := false
	for i := range b.Changes {
		unchanged = unchanged || b.Changes[i].Row.HasUnchanged()
	}
	stage, release, err := t.stageChanges(tbl, b, unchanged, func(c *replica.Change) (driver.Value, int64) {
		return c.CommitTime, 1
	})
	if err != nil {
		return err
	}
	defer release()
	target := ident(tbl.Schema, tbl.Name)
	validTo := ident(replica.ValidToColumn)
	t.modified[target] = true

	exprs := []string{"_pgcdc_s._op AS _op", "_pgcdc_s._lsn AS _lsn", "_pgcdc_s._ts AS _ts"}
	for i, c := range tbl.Columns {
		e := castExpr(c, fmt.Sprintf("_pgcdc_s.c%d", i))
		if unchanged {
			e = fmt.Sprintf("CASE WHEN _pgcdc_s._u IS NOT NULL AND substr(_pgcdc_s._u, %d, 1) = '1' THEN _pgcdc_o.%s ELSE %s END", i+1, ident(c.Name), e)
		}
		exprs = append(exprs, e+" AS "+ident(c.Name))
	}
	from := stage + " AS _pgcdc_s"
	if unchanged {
		on := []string{"_pgcdc_o." + validTo + " IS NULL"}
		for j, k := range keys {
			on = append(on, fmt.Sprintf("_pgcdc_o.%s = %s", ident(tbl.Columns[k].Name), castExpr(tbl.Columns[k], fmt.Sprintf("_pgcdc_s._l%d", j))))
		}
		from += fmt.Sprintf(" LEFT JOIN %s AS _pgcdc_o ON _pgcdc_s._u IS NOT NULL AND %s", target, strings.Join(on, " AND "))
	}
	t.stage++
	typed := fmt.Sprintf("_pgcdc_history_%d", t.stage)
	if err := t.exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT %s FROM %s", typed, strings.Join(exprs, ", "), from)); err != nil {
		return err
	}
	typed = "temp.main." + typed
	defer t.exec(context.Background(), "DROP TABLE IF EXISTS "+typed)

	var keyCols, match []string
	for _, k := range keys {
		n := ident(tbl.Columns[k].Name)
		keyCols = append(keyCols, n)
		match = append(match, fmt.Sprintf("%s.%s = _pgcdc_f.%s", target, n, n))
	}
	list := strings.Join(keyCols, ", ")
	// The first change of each key in the batch.
	first := fmt.Sprintf("(SELECT %s, min(_lsn) AS _lsn, arg_min(_ts, _lsn) AS _ts FROM %s GROUP BY %s)", list, typed, list)
	on := strings.Join(match, " AND ")
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s USING %s AS _pgcdc_f WHERE %s AND %s.%s IS NULL AND %s.%s = _pgcdc_f._lsn",
		target, first, on, target, validTo, target, ident(replica.LSNColumn))); err != nil {
		return err
	}
	if err := t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = _pgcdc_f._ts, %s = _pgcdc_f._lsn FROM %s AS _pgcdc_f WHERE %s AND %s.%s IS NULL",
		target, validTo, ident(replica.ValidToLSNColumn), first, on, target, validTo)); err != nil {
		return err
	}
	cols := make([]string, 0, len(tbl.Columns))
	for _, c := range tbl.Columns {
		cols = append(cols, ident(c.Name))
	}
	data := strings.Join(cols, ", ")
	return t.exec(ctx, fmt.Sprintf(`INSERT INTO %s (%s, %s, %s, %s, %s)
		SELECT %s, _lsn, _ts, _next_ts, _next_lsn FROM (
			SELECT *, lead(_ts) OVER _w AS _next_ts, lead(_lsn) OVER _w AS _next_lsn FROM %s
			WINDOW _w AS (PARTITION BY %s ORDER BY _lsn)) WHERE _op = 'U'`,
		target, data, ident(replica.LSNColumn), ident(replica.ValidFromColumn), validTo, ident(replica.ValidToLSNColumn),
		data, typed, list))
}

// CloseVersions implements replica.HistoryTx.
func (t *tx) CloseVersions(ctx context.Context, tbl *replica.Table, lsn uint64, at time.Time) error {
	if err := t.mergeAll(ctx); err != nil {
		return err
	}
	target := ident(tbl.Schema, tbl.Name)
	validTo, lsnCol := ident(replica.ValidToColumn), ident(replica.LSNColumn)
	t.modified[target] = true
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s IS NULL AND %s = ?", target, validTo, lsnCol), int64(lsn)); err != nil {
		return err
	}
	return t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s IS NULL", target, validTo, ident(replica.ValidToLSNColumn), validTo), at, int64(lsn))
}
