package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Rows reach Postgres as COPY in text format: the values are the source's
// own text output, which the same types' input functions read back
// exactly, so nothing is converted on the way.

// copyText appends one COPY text field: \N for NULL, the value with
// backslash, tab, newline and carriage return escaped otherwise.
func copyText(buf *bytes.Buffer, v []byte) {
	if v == nil {
		buf.WriteString(`\N`)
		return
	}
	for _, b := range v {
		switch b {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		default:
			buf.WriteByte(b)
		}
	}
}

func (t *tx) copyIn(ctx context.Context, target string, cols []string, data *bytes.Buffer) error {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	q := fmt.Sprintf("COPY %s (%s) FROM STDIN", target, strings.Join(quoted, ", "))
	if _, err := t.tx.Conn().PgConn().CopyFrom(ctx, data, q); err != nil {
		return fmt.Errorf("postgres destination: %w\n(statement: %s)", err, abbreviate(q))
	}
	return nil
}

// Load implements replica.Tx: snapshot rows are copied straight into the
// table.
func (t *tx) Load(ctx context.Context, tbl *replica.Table, rows []replica.Row, lsn uint64) error {
	if len(rows) == 0 {
		return nil
	}
	cols := make([]string, 0, len(tbl.Columns)+1)
	for _, c := range tbl.Columns {
		cols = append(cols, c.Name)
	}
	cols = append(cols, replica.LSNColumn)
	l := []byte(strconv.FormatUint(lsn, 10))
	if tbl.History {
		cols = append(cols, replica.ValidFromColumn)
		l = append(l, '\t')
		l = append(l, copyTime(tbl.SnapshotTime)...)
	}
	var buf bytes.Buffer
	for _, r := range rows {
		for _, v := range r.Values {
			copyText(&buf, v)
			buf.WriteByte('\t')
		}
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return t.copyIn(ctx, ident(tbl.Schema, tbl.Name), cols, &buf)
}

// stage returns the temporary table a batch of tbl is staged in, emptied:
// the change's kind, LSN and commit time, which values are unchanged
// TOAST, how many equal rows (keyless tables), the key of the row that
// supplies unchanged values, then the columns in their stored types.
func (t *tx) stage(ctx context.Context, tbl *replica.Table) (string, error) {
	if name, ok := t.stages[tbl]; ok {
		return name, t.exec(ctx, "TRUNCATE "+name)
	}
	name := ident(fmt.Sprintf("_pgcdc_stage_%d", t.next()))
	defs := []string{`_op "char"`, "_lsn bigint", "_ts timestamp with time zone", "_u text", "_n integer"}
	for j, k := range tbl.KeyIndexes() {
		defs = append(defs, fmt.Sprintf("_l%d %s", j, columnType(tbl.Columns[k])))
	}
	for i, c := range tbl.Columns {
		defs = append(defs, fmt.Sprintf("c%d %s", i, columnType(c)))
	}
	if err := t.exec(ctx, fmt.Sprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", name, strings.Join(defs, ", "))); err != nil {
		return "", err
	}
	t.stages[tbl] = name
	return name, nil
}

// Apply implements replica.Tx: the batch is staged with COPY and merged
// with a few set-based statements, one change per key, as the batch
// collapsed them.
func (t *tx) Apply(ctx context.Context, tbl *replica.Table, b *replica.Batch) error {
	if len(b.Changes) == 0 {
		return nil
	}
	if tbl.History {
		return t.applyHistory(ctx, tbl, b)
	}
	if plainMerge(tbl, b) {
		return t.applyPlain(ctx, tbl, b)
	}
	stage, unchanged, soft, err := t.stageBatch(ctx, tbl, b)
	if err != nil {
		return err
	}
	keys := tbl.KeyIndexes()
	target := ident(tbl.Schema, tbl.Name)
	switch {
	case tbl.AppendOnly || len(keys) == 0:
		return t.exec(ctx, insertFromStage(tbl, stage, "_op <> 'D'", false))
	case tbl.FullRow:
		return t.applyFullRow(ctx, tbl, stage)
	}
	var on []string
	for i, k := range keys {
		_ = i
		on = append(on, fmt.Sprintf("d.%s = s.c%d", ident(tbl.Columns[k].Name), k))
	}
	match := strings.Join(on, " AND ")
	if unchanged {
		// Values the source left out as unchanged TOAST come from the row
		// as it is, under the old key when the key changed too; they are
		// read before the old rows go.
		var set, lookup []string
		for i, c := range tbl.Columns {
			set = append(set, fmt.Sprintf("c%d = CASE WHEN substr(s._u, %d, 1) = '1' THEN d.%s ELSE s.c%d END", i, i+1, ident(c.Name), i))
		}
		for j, k := range keys {
			lookup = append(lookup, fmt.Sprintf("d.%s = s._l%d", ident(tbl.Columns[k].Name), j))
		}
		if err := t.exec(ctx, fmt.Sprintf("UPDATE %s s SET %s FROM %s d WHERE s._u IS NOT NULL AND %s",
			stage, strings.Join(set, ", "), target, strings.Join(lookup, " AND "))); err != nil {
			return err
		}
	}
	if tbl.HasDeletedTS && soft {
		if err := t.exec(ctx, fmt.Sprintf("UPDATE %s d SET %s = s._ts, %s = s._lsn FROM %s s WHERE s._op = 'S' AND %s",
			target, ident(replica.DeletedTSColumn), ident(replica.LSNColumn), stage, match)); err != nil {
			return err
		}
	}
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s d USING %s s WHERE s._op IN ('U', 'D') AND %s", target, stage, match)); err != nil {
		return err
	}
	return t.exec(ctx, insertFromStage(tbl, stage, "_op = 'U'", false))
}

// stageBatch copies a batch into its table's staging table (see stage)
// and reports whether any value is unchanged TOAST and any change a soft
// delete. _ts is the commit time of soft deletes, and of every change of
// a History table.
func (t *tx) stageBatch(ctx context.Context, tbl *replica.Table, b *replica.Batch) (stage string, unchanged, soft bool, err error) {
	stage, err = t.stage(ctx, tbl)
	if err != nil {
		return "", false, false, err
	}
	keys := tbl.KeyIndexes()
	cols := []string{"_op", "_lsn", "_ts", "_u", "_n"}
	for j := range keys {
		cols = append(cols, fmt.Sprintf("_l%d", j))
	}
	for i := range tbl.Columns {
		cols = append(cols, fmt.Sprintf("c%d", i))
	}
	var buf bytes.Buffer
	for _, c := range b.Changes {
		buf.WriteByte(byte(c.Kind))
		buf.WriteByte('\t')
		buf.WriteString(strconv.FormatUint(c.LSN, 10))
		buf.WriteByte('\t')
		if c.Kind == replica.SoftDelete || c.Deleted || tbl.History {
			buf.WriteString(copyTime(c.CommitTime))
		} else {
			buf.WriteString(`\N`)
		}
		soft = soft || c.Kind == replica.SoftDelete
		buf.WriteByte('\t')
		mask := unchangedMask(c.Row.Unchanged)
		unchanged = unchanged || mask != nil
		copyText(&buf, mask)
		n := c.Count
		if n < 0 {
			n = -n
		}
		fmt.Fprintf(&buf, "\t%d", n)
		for j, k := range keys {
			buf.WriteByte('\t')
			v := c.Row.Values[k]
			if c.Lookup != nil {
				v = c.Lookup[j]
			}
			if mask == nil {
				v = nil
			}
			copyText(&buf, v)
		}
		for i, v := range c.Row.Values {
			buf.WriteByte('\t')
			if c.Row.Unchanged != nil && c.Row.Unchanged[i] {
				v = nil
			}
			copyText(&buf, v)
		}
		buf.WriteByte('\n')
	}
	if err := t.copyIn(ctx, stage, cols, &buf); err != nil {
		return "", false, false, err
	}
	return stage, unchanged, soft, nil
}

// insertFromStage is the INSERT of the staged rows that where selects.
func insertFromStage(tbl *replica.Table, stage, where string, series bool) string {
	cols := make([]string, 0, len(tbl.Columns)+2)
	exprs := make([]string, 0, len(tbl.Columns)+2)
	for i, c := range tbl.Columns {
		cols = append(cols, ident(c.Name))
		exprs = append(exprs, fmt.Sprintf("c%d", i))
	}
	cols = append(cols, ident(replica.LSNColumn))
	exprs = append(exprs, "_lsn")
	if tbl.HasDeletedTS {
		cols = append(cols, ident(replica.DeletedTSColumn))
		exprs = append(exprs, "_ts")
	}
	from := stage
	if series {
		from += ", generate_series(1, _n)"
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s", ident(tbl.Schema, tbl.Name),
		strings.Join(cols, ", "), strings.Join(exprs, ", "), from, where)
}

// applyFullRow applies row counts to a table without a key: Remove deletes
// that many live rows equal to the staged one, Append inserts that many
// copies, SoftDelete marks that many live equal rows deleted. Rows are
// compared by their text form, which every type has (json and point have
// no equality operator); equal rows are interchangeable, so which ones go
// does not matter, that exactly n go does.
func (t *tx) applyFullRow(ctx context.Context, tbl *replica.Table, stage string) error {
	target := ident(tbl.Schema, tbl.Name)
	var match []string
	for i, c := range tbl.Columns {
		match = append(match, fmt.Sprintf("d.%s::text IS NOT DISTINCT FROM m.c%d::text", ident(c.Name), i))
	}
	live := ""
	if tbl.HasDeletedTS {
		live = fmt.Sprintf(" AND d.%s IS NULL", ident(replica.DeletedTSColumn))
	}
	victims := func(op replica.ChangeKind) string {
		return fmt.Sprintf(`SELECT rid, ts, lsn FROM (
			SELECT d.ctid AS rid, m._ts AS ts, m._lsn AS lsn, m._n AS n,
				row_number() OVER (PARTITION BY m._id ORDER BY d.ctid) AS rn
			FROM %s d JOIN (SELECT row_number() OVER () AS _id, * FROM %s) m ON %s%s
			WHERE m._op = '%c') v WHERE rn <= n`, target, stage, strings.Join(match, " AND "), live, op)
	}
	if err := t.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE ctid IN (SELECT rid FROM (%s) x)", target, victims(replica.Remove))); err != nil {
		return err
	}
	if err := t.exec(ctx, insertFromStage(tbl, stage, "_op = 'A'", true)); err != nil {
		return err
	}
	if !tbl.HasDeletedTS {
		return nil
	}
	return t.exec(ctx, fmt.Sprintf("UPDATE %s d SET %s = v.ts, %s = v.lsn FROM (%s) v WHERE d.ctid = v.rid",
		target, ident(replica.DeletedTSColumn), ident(replica.LSNColumn), victims(replica.SoftDelete)))
}

// unchangedMask is a '1' per value left out as unchanged TOAST, '0'
// otherwise; nil when every value is present.
func unchangedMask(u []bool) []byte {
	if u == nil {
		return nil
	}
	mask := make([]byte, len(u))
	any := false
	for i, x := range u {
		mask[i] = '0'
		if x {
			mask[i] = '1'
			any = true
		}
	}
	if !any {
		return nil
	}
	return mask
}

// Backfill implements replica.Tx: columns cols of the rows whose keys rows
// hold are set from the source, through a staging table.
func (t *tx) Backfill(ctx context.Context, tbl *replica.Table, cols []int, rows []replica.Row) error {
	if len(rows) == 0 {
		return nil
	}
	keys := tbl.KeyIndexes()
	order := append(append([]int{}, keys...), cols...)
	name := ident(fmt.Sprintf("_pgcdc_backfill_%d", t.next()))
	var defs, names []string
	for i, col := range order {
		defs = append(defs, fmt.Sprintf("v%d %s", i, columnType(tbl.Columns[col])))
		names = append(names, fmt.Sprintf("v%d", i))
	}
	if err := t.exec(ctx, fmt.Sprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", name, strings.Join(defs, ", "))); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range rows {
		for i := range order {
			if i > 0 {
				buf.WriteByte('\t')
			}
			copyText(&buf, r.Values[i])
		}
		buf.WriteByte('\n')
	}
	if err := t.copyIn(ctx, name, names, &buf); err != nil {
		return err
	}
	var set, on []string
	for i, col := range order {
		c := ident(tbl.Columns[col].Name)
		if i < len(keys) {
			on = append(on, fmt.Sprintf("d.%s = b.v%d", c, i))
		} else {
			set = append(set, fmt.Sprintf("%s = b.v%d", c, i))
		}
	}
	if tbl.History {
		// The source rewrote the current rows; earlier versions keep what
		// they held.
		on = append(on, "d."+ident(replica.ValidToColumn)+" IS NULL")
	}
	if err := t.exec(ctx, fmt.Sprintf("UPDATE %s d SET %s FROM %s b WHERE %s", ident(tbl.Schema, tbl.Name),
		strings.Join(set, ", "), name, strings.Join(on, " AND "))); err != nil {
		return err
	}
	return t.exec(ctx, "DROP TABLE "+name)
}

// Truncate implements replica.Tx.
func (t *tx) Truncate(ctx context.Context, tbl *replica.Table) error {
	return t.exec(ctx, "TRUNCATE "+ident(tbl.Schema, tbl.Name))
}

var _ replica.CopyLoader = (*tx)(nil)

// CopyFormat implements replica.CopyLoader. Tables whose columns all have
// built-in types take the source's binary COPY output as it is: both sides
// share the types' OIDs and binary forms. Types created from the source's
// catalog have other OIDs here, which binary arrays and composites carry,
// and a hinted column has another type; those take the text output, which
// every input function reads.
func (t *tx) CopyFormat(tbl *replica.Table) string {
	if len(tbl.Types) > 0 {
		return "text"
	}
	for _, c := range tbl.Columns {
		if c.Hint != nil {
			return "text"
		}
	}
	return "binary"
}

// LoadCopy implements replica.CopyLoader. _pg_lsn is filled by a default
// for the length of the load, so that the source's data needs no column
// added.
func (t *tx) LoadCopy(ctx context.Context, tbl *replica.Table, lsn uint64, data io.Reader) (n int64, err error) {
	target := ident(tbl.Schema, tbl.Name)
	lsnCol := ident(replica.LSNColumn)
	if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %d", target, lsnCol, lsn)); err != nil {
		return 0, err
	}
	if tbl.History {
		from := ident(replica.ValidFromColumn)
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT '%s'", target, from, copyTime(tbl.SnapshotTime))); err != nil {
			return 0, err
		}
		defer func() {
			if err == nil {
				err = t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", target, from))
			}
		}()
	}
	cols := make([]string, len(tbl.Columns))
	for i, c := range tbl.Columns {
		cols[i] = ident(c.Name)
	}
	q := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT %s)", target, strings.Join(cols, ", "), t.CopyFormat(tbl))
	tag, err := t.tx.Conn().PgConn().CopyFrom(ctx, fullReads{data}, q)
	if err != nil {
		return 0, fmt.Errorf("postgres destination: loading %s: %w", tbl.Qualified(), err)
	}
	if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", target, lsnCol)); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// fullReads fills every buffer it is given before returning it, short only
// at the end of the data. pgconn sends one CopyData message, and one
// write to the socket, per Read; the source's COPY output arrives one row
// per write, so without this a snapshot costs the destination a message,
// and both sides a system call, per row.
type fullReads struct{ r io.Reader }

func (f fullReads) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if err == io.ErrUnexpectedEOF {
		err = nil // the rest now; io.EOF on the next Read
	}
	return n, err
}

// copyTime is a timestamptz in COPY text form.
func copyTime(at time.Time) string {
	return at.UTC().Format("2006-01-02 15:04:05.999999Z07:00")
}
