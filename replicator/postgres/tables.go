package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// attnumComment marks a column as pgcdc's and records its source attnum, as
// in the DuckDB destination: it is how a renamed column is recognised.
const attnumComment = "pgcdc attnum "

// columnType is the type a column is stored as: the source's own, or the
// one a column hint names.
func columnType(c replica.Column) string {
	if c.Hint != nil {
		return hintType(*c.Hint)
	}
	if c.TypeSQL != "" {
		return c.TypeSQL
	}
	return c.TypeName
}

// hintType maps dlt's data types to Postgres types, spelled as format_type
// spells them so that they compare with the catalog.
func hintType(h replica.TypeHint) string {
	switch h.DataType {
	case "text":
		if h.Precision > 0 {
			return fmt.Sprintf("character varying(%d)", h.Precision)
		}
		return "text"
	case "double":
		return "double precision"
	case "bool":
		return "boolean"
	case "timestamp":
		tz := "with time zone"
		if !h.WithTimezone() {
			tz = "without time zone"
		}
		if h.Precision > 0 && h.Precision < 6 {
			return fmt.Sprintf("timestamp(%d) %s", h.Precision, tz)
		}
		return "timestamp " + tz
	case "bigint":
		// dlt's precision of an integer is its size in bits.
		switch {
		case h.Precision == 0:
			return "bigint"
		case h.Precision <= 16:
			return "smallint"
		case h.Precision <= 32:
			return "integer"
		}
		return "bigint"
	case "binary":
		return "bytea"
	case "json", "complex":
		return "jsonb"
	case "decimal":
		if h.Precision == 0 {
			return "numeric"
		}
		return fmt.Sprintf("numeric(%d,%d)", h.Precision, h.Scale)
	case "wei":
		// dlt's wei is a 256-bit integer: 78 digits.
		return "numeric(78,0)"
	case "date":
		return "date"
	case "time":
		if h.Precision > 0 && h.Precision < 6 {
			return fmt.Sprintf("time(%d) without time zone", h.Precision)
		}
		return "time without time zone"
	}
	return "text"
}

// CheckTable implements replica.Destination: Postgres stores every type
// and hint the engine hands it but integers wider than 64 bits, which dlt
// refuses for Postgres too.
func (d *Destination) CheckTable(t *replica.Table) error {
	for _, c := range t.Columns {
		if h := c.Hint; h != nil && h.DataType == "bigint" && h.Precision > 64 {
			return fmt.Errorf("columns: %s.%s: Postgres has no integer of %d bits (at most 64); use data_type decimal",
				t.QualifiedSource(), c.Name, h.Precision)
		}
	}
	return nil
}

// colDef is a destination column: a data column or a metadata one.
type colDef struct{ name, typ string }

func tableColumns(tbl *replica.Table) []colDef {
	defs := make([]colDef, 0, len(tbl.Columns)+2)
	for _, c := range tbl.Columns {
		defs = append(defs, colDef{c.Name, columnType(c)})
	}
	defs = append(defs, colDef{replica.LSNColumn, "bigint"})
	if tbl.History {
		defs = append(defs, colDef{replica.ValidFromColumn, "timestamp with time zone"}, colDef{replica.ValidToColumn, "timestamp with time zone"},
			colDef{replica.ValidToLSNColumn, "bigint"})
	}
	if tbl.HasDeletedTS {
		defs = append(defs, colDef{replica.DeletedTSColumn, "timestamp with time zone"})
	}
	return defs
}

// keyed reports whether rows are merged on a key, which the destination
// table then has as its primary key (with _pg_lsn for a History table,
// which holds one version per key and source transaction).
func keyed(tbl *replica.Table) bool {
	return !tbl.AppendOnly && !tbl.FullRow && len(tbl.KeyIndexes()) > 0
}

type destColumn struct {
	typ string
	num int // source attnum from the column comment; 0 for metadata columns
}

// columns returns the table's columns, or nil when it does not exist.
func (t *tx) columns(ctx context.Context, schema, name string) (map[string]destColumn, error) {
	rows, err := t.tx.Query(ctx, `SELECT a.attname::text, `+replica.PostgresTypeSQL("a.atttypid", "a.atttypmod")+`,
		COALESCE(col_description(a.attrelid, a.attnum), '')
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, ident(schema, name))
	if err != nil {
		return nil, fmt.Errorf("postgres destination: read columns: %w", err)
	}
	defer rows.Close()
	var cols map[string]destColumn
	for rows.Next() {
		var c, typ, comment string
		if err := rows.Scan(&c, &typ, &comment); err != nil {
			return nil, err
		}
		if cols == nil {
			cols = map[string]destColumn{}
		}
		d := destColumn{typ: typ}
		if n, ok := strings.CutPrefix(comment, attnumComment); ok {
			d.num, _ = strconv.Atoi(n)
		}
		cols[c] = d
	}
	return cols, rows.Err()
}

// EnsureTable implements replica.Tx: it creates the types the table uses and
// the table, or brings an existing table in line with tbl, the way the
// source changed. Postgres's DDL is transactional, so every change commits
// with the data it shapes.
func (t *tx) EnsureTable(ctx context.Context, tbl *replica.Table) ([]string, error) {
	if err := t.ensureTypes(ctx, tbl.Types); err != nil {
		return nil, err
	}
	if err := t.exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(tbl.Schema)); err != nil {
		return nil, err
	}
	existing, err := t.columns(ctx, tbl.Schema, tbl.Name)
	if err != nil {
		return nil, err
	}
	want := tableColumns(tbl)
	target := ident(tbl.Schema, tbl.Name)
	if existing == nil {
		defs := make([]string, len(want))
		for i, c := range want {
			defs[i] = ident(c.name) + " " + c.typ
		}
		if err := t.exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", target, strings.Join(defs, ", "))); err != nil {
			return nil, err
		}
		t.created[tbl.TableName()] = true
		if err := t.ensureKey(ctx, tbl); err != nil {
			return nil, err
		}
		return nil, t.commentColumns(ctx, tbl, nil)
	}

	nums := make(map[string]int, len(existing))
	for name, e := range existing {
		nums[name] = e.num
	}
	var metadata []string
	for _, c := range want[len(tbl.Columns):] {
		metadata = append(metadata, c.name)
	}
	from := replica.MatchColumns(tbl.Columns, metadata, nums)
	stale := replica.Rewritten(tbl.Columns, from, true, func(c replica.Column, old string) bool {
		return existing[old].typ != columnType(c)
	})

	// Renames go through temporary names, so that chains and swaps of
	// renames never meet a name still in use.
	var renamed []string
	for _, c := range want {
		if old, ok := from[c.name]; ok && old != c.name {
			renamed = append(renamed, c.name)
		}
	}
	slices.Sort(renamed)
	for i, name := range renamed {
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", target, ident(from[name]), ident(fmt.Sprintf("_pgcdc_renaming_%d", i)))); err != nil {
			return nil, err
		}
	}
	for i, name := range renamed {
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", target, ident(fmt.Sprintf("_pgcdc_renaming_%d", i)), ident(name))); err != nil {
			return nil, err
		}
	}
	kept := map[string]bool{}
	for _, old := range from {
		kept[old] = true
	}
	for name, e := range existing {
		if !kept[name] && e.num > 0 {
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", target, ident(name))); err != nil {
				return nil, err
			}
		}
	}
	for i, c := range want {
		old, ok := from[c.name]
		switch {
		case !ok:
			q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", target, ident(c.name), c.typ)
			if i < len(tbl.Columns) && tbl.Columns[i].Missing != nil {
				// Rows that existed before the column hold this value in
				// the source without any WAL; a constant default gives it
				// to them without a rewrite.
				q += " DEFAULT " + literal(*tbl.Columns[i].Missing) + "::" + c.typ
				if err := t.exec(ctx, q); err != nil {
					return nil, err
				}
				q = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", target, ident(c.name))
			}
			if err := t.exec(ctx, q); err != nil {
				return nil, err
			}
		case existing[old].typ != c.typ:
			if err := t.retype(ctx, target, c); err != nil {
				return nil, err
			}
		}
	}
	if err := t.ensureKey(ctx, tbl); err != nil {
		return nil, err
	}
	after := map[string]destColumn{}
	for _, c := range tbl.Columns {
		if old, ok := from[c.Name]; ok {
			after[c.Name] = existing[old]
		}
	}
	return stale, t.commentColumns(ctx, tbl, after)
}

// retype changes a column's type. The values are backfilled from the
// source afterwards when the stream can match rows (the source may have
// computed new ones with USING); converting through text keeps them when
// the types are compatible, and NULL stands in when they are not.
func (t *tx) retype(ctx context.Context, target string, c colDef) error {
	if err := t.exec(ctx, "SAVEPOINT pgcdc_retype"); err != nil {
		return err
	}
	q := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::text::%s", target, ident(c.name), c.typ, ident(c.name), c.typ)
	if err := t.exec(ctx, q); err != nil {
		if err := t.exec(ctx, "ROLLBACK TO SAVEPOINT pgcdc_retype"); err != nil {
			return err
		}
		q = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING NULL", target, ident(c.name), c.typ)
		if err := t.exec(ctx, q); err != nil {
			return err
		}
	}
	return t.exec(ctx, "RELEASE SAVEPOINT pgcdc_retype")
}

// ensureKey gives a merged table its key as primary key, and drops one a
// table no longer merges on. A table created in this transaction gets its
// key at commit, after the snapshot is loaded: building the index once is
// cheaper than maintaining it row by row.
func (t *tx) ensureKey(ctx context.Context, tbl *replica.Table) error {
	target := ident(tbl.Schema, tbl.Name)
	var want []string
	if keyed(tbl) {
		for _, i := range tbl.KeyIndexes() {
			want = append(want, tbl.Columns[i].Name)
		}
		if tbl.History {
			want = append(want, replica.LSNColumn)
		}
	}
	conname, have, err := t.primaryKeyConstraint(ctx, target)
	if err != nil {
		return err
	}
	if slices.Equal(want, have) {
		return nil
	}
	delete(t.keys, tbl.TableName())
	if conname != nil {
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", target, ident(*conname))); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	if t.created[tbl.TableName()] {
		t.pendingKeys[tbl.TableName()] = want
		return nil
	}
	return t.addKey(ctx, tbl.TableName(), want)
}

// primaryKeyConstraint is the name and columns of table's primary key,
// nil when it has none.
func (t *tx) primaryKeyConstraint(ctx context.Context, table string) (conname *string, cols []string, err error) {
	err = t.tx.QueryRow(ctx, `SELECT c.conname::text, array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'p'`, table).Scan(&conname, &cols)
	if err != nil && err != pgx.ErrNoRows {
		return nil, nil, fmt.Errorf("postgres destination: read primary key: %w", err)
	}
	return conname, cols, nil
}

// primaryKey is the columns of table's primary key, nil when it has none.
func (t *tx) primaryKey(ctx context.Context, table string) ([]string, error) {
	_, cols, err := t.primaryKeyConstraint(ctx, table)
	return cols, err
}

func (t *tx) addKey(ctx context.Context, name replica.TableName, cols []string) error {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	return t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", ident(name.Schema, name.Name), strings.Join(quoted, ", ")))
}

// commentColumns records each column's attnum where it is not recorded yet.
func (t *tx) commentColumns(ctx context.Context, tbl *replica.Table, existing map[string]destColumn) error {
	for _, c := range tbl.Columns {
		if c.Num == 0 || existing[c.Name].num == c.Num {
			continue
		}
		q := fmt.Sprintf("COMMENT ON COLUMN %s IS %s", ident(tbl.Schema, tbl.Name, c.Name), literal(attnumComment+strconv.Itoa(c.Num)))
		if err := t.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// ensureTypes creates the user-defined types a table uses, in dependency
// order. An enum that exists gets the labels the source added since: those
// are added on a connection of their own, because Postgres lets a
// transaction use an enum label only after the label's own transaction
// committed.
func (t *tx) ensureTypes(ctx context.Context, types []replica.TypeDef) error {
	for _, td := range types {
		q := ident(td.Name.Schema, td.Name.Name)
		var exists bool
		if err := t.tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", q).Scan(&exists); err != nil {
			return fmt.Errorf("postgres destination: %w", err)
		}
		switch {
		case td.Kind == 'b' && !exists:
			hint := "It is not from an extension, so pgcdc cannot create it; create it in the destination, or store the column as text with a columns hint."
			if td.Extension != "" {
				hint = fmt.Sprintf("Create it with CREATE EXTENSION %s in the destination database.", ident(td.Extension))
			}
			return &pgconn.PgError{Severity: "ERROR", Code: "42704", Message: fmt.Sprintf("type %s does not exist in the destination", q), Hint: hint}
		case td.Kind == 'b':
		case !exists:
			if err := t.exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(td.Name.Schema)); err != nil {
				return err
			}
			if err := t.exec(ctx, td.SQL); err != nil {
				return err
			}
		case td.Kind == 'e':
			if err := t.addLabels(ctx, q, td.Labels); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *tx) addLabels(ctx context.Context, q string, labels []string) error {
	rows, err := t.tx.Query(ctx, "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = to_regtype($1) ORDER BY enumsortorder", q)
	if err != nil {
		return fmt.Errorf("postgres destination: read enum: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres destination: read enum: %w", err)
	}
	var missing []string
	for _, l := range labels {
		if !slices.Contains(have, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	conn, err := t.d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres destination: %w", err)
	}
	defer conn.Release()
	for i, l := range labels {
		if slices.Contains(have, l) {
			continue
		}
		stmt := fmt.Sprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS %s", q, literal(l))
		if i > 0 {
			stmt += " AFTER " + literal(labels[i-1])
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("postgres destination: adding label %q to enum %s: %w", l, q, err)
		}
	}
	return nil
}

// RenameTable implements replica.Tx. A move to another schema goes through
// a temporary name, so that it never meets a table of the old name there.
func (t *tx) RenameTable(ctx context.Context, from, to replica.TableName) error {
	if exists, err := t.TableExists(ctx, to.Schema, to.Name); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("postgres destination: cannot rename %s to %s: %s already exists", from, to, to)
	}
	delete(t.keys, from)
	delete(t.keys, to)
	cur := from
	if from.Schema != to.Schema {
		if err := t.exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(to.Schema)); err != nil {
			return err
		}
		if from.Name != to.Name {
			tmp := replica.TableName{Schema: from.Schema, Name: fmt.Sprintf("_pgcdc_moving_%d", t.next())}
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", ident(cur.Schema, cur.Name), ident(tmp.Name))); err != nil {
				return err
			}
			cur = tmp
		}
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s SET SCHEMA %s", ident(cur.Schema, cur.Name), ident(to.Schema))); err != nil {
			return err
		}
		cur.Schema = to.Schema
	}
	if cur.Name != to.Name {
		if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", ident(cur.Schema, cur.Name), ident(to.Name))); err != nil {
			return err
		}
	}
	if t.created[from] {
		delete(t.created, from)
		t.created[to] = true
	}
	if k, ok := t.pendingKeys[from]; ok {
		delete(t.pendingKeys, from)
		t.pendingKeys[to] = k
	}
	return nil
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
