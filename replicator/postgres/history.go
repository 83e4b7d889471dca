package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

var _ replica.HistoryTx = (*tx)(nil)

// applyHistory applies a History batch: one change per key and source
// transaction, in commit order. In set-based steps:
//
//  1. unchanged TOAST values are filled in the staging table from the
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
// The primary key (key, _pg_lsn) makes a version that would be added
// twice an error rather than a duplicate; a batch replayed after a crash
// does not get here, because the stored position skips it.
func (t *tx) applyHistory(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	stage, unchanged, _, err := t.stageBatch(ctx, tbl, b)
	if err != nil {
		return err
	}
	keys := tbl.KeyIndexes()
	target := ident(tbl.Schema, tbl.Name)
	validTo := ident(replica.ValidToColumn)
	if unchanged {
		var set, lookup []string
		for i, c := range tbl.Columns {
			set = append(set, fmt.Sprintf("c%d = CASE WHEN substr(s._u, %d, 1) = '1' THEN d.%s ELSE s.c%d END", i, i+1, ident(c.Name), i))
		}
		for j, k := range keys {
			lookup = append(lookup, fmt.Sprintf("d.%s = s._l%d", ident(tbl.Columns[k].Name), j))
		}
		if err := t.exec(ctx, fmt.Sprintf("UPDATE %s s SET %s FROM %s d WHERE s._u IS NOT NULL AND d.%s IS NULL AND %s",
			stage, strings.Join(set, ", "), target, validTo, strings.Join(lookup, " AND "))); err != nil {
			return err
		}
	}
	var keyCols, match []string
	for _, k := range keys {
		keyCols = append(keyCols, fmt.Sprintf("c%d", k))
		match = append(match, fmt.Sprintf("d.%s = f.c%d", ident(tbl.Columns[k].Name), k))
	}
	list := strings.Join(keyCols, ", ")
	// The first change of each key in the batch.
	first := fmt.Sprintf("(SELECT DISTINCT ON (%s) %s, _lsn, _ts FROM %s ORDER BY %s, _lsn)", list, list, stage, list)
	on := strings.Join(match, " AND ")
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s d USING %s f WHERE %s AND d.%s IS NULL AND d.%s = f._lsn",
		target, first, on, validTo, ident(replica.LSNColumn))); err != nil {
		return err
	}
	if err := t.exec(ctx, fmt.Sprintf("UPDATE %s d SET %s = f._ts, %s = f._lsn FROM %s f WHERE %s AND d.%s IS NULL",
		target, validTo, ident(replica.ValidToLSNColumn), first, on, validTo)); err != nil {
		return err
	}
	cols := make([]string, 0, len(tbl.Columns)+4)
	exprs := make([]string, 0, len(tbl.Columns)+4)
	for i, c := range tbl.Columns {
		cols = append(cols, ident(c.Name))
		exprs = append(exprs, fmt.Sprintf("c%d", i))
	}
	cols = append(cols, ident(replica.LSNColumn), ident(replica.ValidFromColumn), validTo, ident(replica.ValidToLSNColumn))
	exprs = append(exprs, "_lsn", "_ts", "_next_ts", "_next_lsn")
	return t.exec(ctx, fmt.Sprintf(`INSERT INTO %s (%s)
		SELECT %s FROM (
			SELECT *, lead(_ts) OVER w AS _next_ts, lead(_lsn) OVER w AS _next_lsn FROM %s
			WINDOW w AS (PARTITION BY %s ORDER BY _lsn)) v WHERE _op = 'U'`,
		target, strings.Join(cols, ", "), strings.Join(exprs, ", "), stage, list))
}

// CloseVersions implements replica.HistoryTx.
func (t *tx) CloseVersions(ctx context.Context, tbl *replica.Table, lsn uint64, at time.Time) error {
	target := ident(tbl.Schema, tbl.Name)
	validTo, lsnCol := ident(replica.ValidToColumn), ident(replica.LSNColumn)
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s IS NULL AND %s = %d", target, validTo, lsnCol, lsn)); err != nil {
		return err
	}
	return t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = '%s', %s = %d WHERE %s IS NULL",
		target, validTo, copyTime(at), ident(replica.ValidToLSNColumn), lsn, validTo))
}
