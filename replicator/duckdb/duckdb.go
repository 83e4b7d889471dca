package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgcdc/pgcdc/replicator/replica"
	pgsql "github.com/pgcdc/pgcdc/sql"
)

// Destination is a DuckDB database file.
type Destination struct {
	// db is the engine's pool: write transactions and state reads. No client
	// session ever gets a connection from it, so nothing a client does to
	// its connection (a SET, an open transaction, USE) reaches the engine.
	db *sql.DB
	// connector opens the connections of client sessions, one each, closed
	// when the session ends.
	connector *duckdb.Connector
	path      string
	policy    *policy
	catalog   *catalogRewriter // the Postgres catalog of client sessions
}

var (
	_ replica.Destination = (*Destination)(nil)
	_ pgsql.Backend       = (*Destination)(nil)
)

// Option configures Open.
type Option func(*options)

type options struct {
	unsafeClientFileAccess bool
	memoryLimit            int64
}

// MemoryLimit caps DuckDB's memory (its buffer pool: table data, the open
// transaction's uncommitted rows, the working memory of queries) at bytes,
// when bytes is more than 0. Past it DuckDB spills to its temp_directory,
// next to the database file (<file>.tmp), rather than growing: so big
// transactions and client queries (ORDER BY, GROUP BY, joins) still run,
// more slowly. A memory_limit (or max_memory) in the path's settings
// (file.duckdb?memory_limit=1GB) wins over it. DuckDB's own default, 80% of
// the machine's RAM, applies when neither is given.
func MemoryLimit(bytes int64) Option {
	return func(o *options) { o.memoryLimit = bytes }
}

// UnsafeClientFileAccess, when allow is true, leaves DuckDB's external
// access and configuration unlocked for client sessions: every client can
// then read and write any file the pgcdc process can, ATTACH databases,
// INSTALL and LOAD extensions (native code in pgcdc's process) and change
// global DuckDB settings, the engine's included. Off, clients get the
// replica and nothing past it.
func UnsafeClientFileAccess(allow bool) Option {
	return func(o *options) { o.unsafeClientFileAccess = allow }
}

// Open opens (creating if missing) the DuckDB file at path; ":memory:" or
// "" is an in-memory database.
//
// The engine's own set-up (the stage function, the state schema) runs
// first; then, unless UnsafeClientFileAccess allows it, the database is
// closed to the outside: enable_external_access = false stops every file,
// network and extension access, and lock_configuration = true freezes the
// global settings, both for every connection from then on. The engine
// needs neither after Open.
func Open(ctx context.Context, path string, opts ...Option) (*Destination, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dsn := path
	if path == ":memory:" {
		dsn = ""
	}
	if o.memoryLimit > 0 && !settingInPath(path, "memory_limit", "max_memory") {
		// At open, not by SET afterwards: opening replays the write-ahead
		// log of a database that was not shut down cleanly, and the
		// replay must already be bounded.
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += fmt.Sprintf("%smemory_limit=%dB", sep, o.memoryLimit)
	}
	connector, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb: open %s: %w", path, err)
	}
	// The pool closes the connector when it is closed.
	db := sql.OpenDB(connector)
	d := &Destination{db: db, connector: connector, path: path}
	fail := func(err error) (*Destination, error) {
		db.Close()
		return nil, fmt.Errorf("duckdb: open %s: %w", path, err)
	}
	if err := registerStage(ctx, db); err != nil {
		return fail(err)
	}
	if err := registerLoad(ctx, db); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, db); err != nil {
		return fail(err)
	}
	if d.catalog, err = installCatalog(ctx, db); err != nil {
		return fail(err)
	}
	if d.policy, err = newPolicy(ctx, db, o.unsafeClientFileAccess); err != nil {
		return fail(err)
	}
	if err := postgresSettings(ctx, db); err != nil {
		return fail(err)
	}
	if err := closeToClients(ctx, db, !o.unsafeClientFileAccess); err != nil {
		return fail(err)
	}
	return d, nil
}

// settingInPath reports whether the DuckDB path's settings (after "?")
// name one of names.
func settingInPath(path string, names ...string) bool {
	_, query, ok := strings.Cut(path, "?")
	if !ok {
		return false
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return false // the connector rejects it
	}
	for _, n := range names {
		if values.Has(n) {
			return true
		}
	}
	return false
}

// closeToClients turns external access off and locks the configuration
// when closed is true, or checks that they are open. A second Open of a
// file in the same process shares its DuckDB instance, which the first may
// already have closed.
func closeToClients(ctx context.Context, db *sql.DB, closed bool) error {
	var access, locked bool
	if err := db.QueryRowContext(ctx, `SELECT current_setting('enable_external_access'), current_setting('lock_configuration')`).Scan(&access, &locked); err != nil {
		return err
	}
	if !closed {
		if !access || locked {
			return errors.New("the database is already open with client file access closed")
		}
		return nil
	}
	if access {
		if _, err := db.ExecContext(ctx, "SET GLOBAL enable_external_access = false"); err != nil {
			return err
		}
	}
	if !locked {
		if _, err := db.ExecContext(ctx, "SET GLOBAL lock_configuration = true"); err != nil {
			return err
		}
	}
	return nil
}

// DB exposes the database for tests and tools.
func (d *Destination) DB() *sql.DB { return d.db }

// Close closes the database. Client sessions still open keep their
// connections until they end; DuckDB shuts down after the last one.
func (d *Destination) Close() error { return d.db.Close() }

// Begin implements replica.Destination. The transaction holds one
// connection, because DuckDB's Appender writes through a connection and
// joins its transaction.
func (d *Destination) Begin(ctx context.Context) (replica.Tx, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("duckdb: begin: %w", err)
	}
	return &tx{conn: conn, modified: map[string]bool{}, pend: map[string]*pending{}}, nil
}

type tx struct {
	conn  *sql.Conn
	done  bool
	stage int
	// modified holds the tables this transaction has updated or deleted
	// rows in; see rebuild.
	modified map[string]bool
	// pend holds the batches staged for a merge, by table (merge.go).
	pend      map[string]*pending
	pendOrder []string
	pendBytes int64
	seq       int64
}

func (t *tx) exec(ctx context.Context, q string, args ...any) error {
	if _, err := t.conn.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%w\n(statement: %s)", err, abbreviate(q))
	}
	return nil
}

func abbreviate(q string) string {
	if len(q) > 300 {
		return q[:300] + "..."
	}
	return q
}

func (t *tx) Commit(ctx context.Context) error {
	if t.done {
		return errors.New("duckdb: transaction already ended")
	}
	if err := t.mergeAll(ctx); err != nil {
		t.Rollback(context.Background())
		return fmt.Errorf("duckdb: commit: %w", err)
	}
	t.done = true
	defer t.conn.Close()
	if _, err := t.conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("duckdb: commit: %w", err)
	}
	return nil
}

func (t *tx) Rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	defer t.conn.Close()
	t.closeAppenders()
	_, err := t.conn.ExecContext(ctx, "ROLLBACK")
	return err
}

func (t *tx) Truncate(ctx context.Context, tbl *replica.Table) error {
	if err := t.discard(ctx, ident(tbl.Schema, tbl.Name)); err != nil {
		return err
	}
	t.modified[ident(tbl.Schema, tbl.Name)] = true
	return t.exec(ctx, "DELETE FROM "+ident(tbl.Schema, tbl.Name))
}

// EnsureTable creates the table or brings it in line with tbl, the way the
// source changed: renamed columns (recognised by the attnum each column's
// comment records) are renamed, dropped ones dropped, new ones added and
// filled with the value existing source rows hold without WAL, changed
// types altered.
func (t *tx) EnsureTable(ctx context.Context, tbl *replica.Table) ([]string, error) {
	if err := t.mergeAll(ctx); err != nil {
		return nil, err
	}
	if err := t.exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(tbl.Schema)); err != nil {
		return nil, err
	}
	existing, err := t.columns(ctx, tbl.Schema, tbl.Name)
	if err != nil {
		return nil, err
	}
	nums := make(map[string]int, len(existing))
	for name, e := range existing {
		nums[name] = e.num
	}
	var metadata []string
	for _, c := range tableColumns(tbl)[len(tbl.Columns):] {
		metadata = append(metadata, c.name)
	}
	from := replica.MatchColumns(tbl.Columns, metadata, nums)
	stale := replica.Rewritten(tbl.Columns, from, existing != nil, func(c replica.Column, old string) bool {
		return !sameType(existing[old].typ, columnType(c))
	})
	if err = t.ensure(ctx, tbl, existing, from); err != nil {
		return stale, err
	}
	return stale, t.recordColumns(ctx, tbl)
}

func (t *tx) ensure(ctx context.Context, tbl *replica.Table, existing map[string]destColumn, from map[string]string) error {
	target := ident(tbl.Schema, tbl.Name)
	want := tableColumns(tbl)
	if existing == nil {
		defs := make([]string, len(want))
		for i, c := range want {
			defs[i] = ident(c.name) + " " + c.typ
		}
		if err := t.exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", target, strings.Join(defs, ", "))); err != nil {
			return err
		}
		return t.commentColumns(ctx, tbl, nil)
	}
	wanted := map[string]bool{}
	for _, c := range want {
		wanted[c.name] = true
	}
	changed := false
	for _, c := range want {
		old, ok := from[c.name]
		changed = changed || !ok || old != c.name || !sameType(existing[old].typ, c.typ)
	}
	for name, e := range existing {
		changed = changed || (!wanted[name] && e.num > 0 && !contains(from, name))
	}
	if !changed {
		return t.commentColumns(ctx, tbl, existing)
	}
	// A wanted name still held by another column (a chain or swap of
	// renames, a column dropped and added again) cannot be reached by
	// ALTERs one at a time.
	collides := false
	for _, c := range want {
		if _, held := existing[c.name]; held && from[c.name] != c.name {
			collides = true
		}
	}
	if t.modified[target] || collides {
		return t.rebuild(ctx, tbl, want, from)
	}
	for name, old := range from {
		if name != old {
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", target, ident(old), ident(name))); err != nil {
				return err
			}
			existing[name] = existing[old]
			delete(existing, old)
		}
	}
	for name, e := range existing {
		if !wanted[name] && e.num > 0 {
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", target, ident(name))); err != nil {
				return err
			}
		}
	}
	for i, c := range want {
		e, ok := existing[c.name]
		switch {
		case !ok:
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", target, ident(c.name), c.typ)); err != nil {
				return err
			}
			if i < len(tbl.Columns) && tbl.Columns[i].Missing != nil {
				fill, err := missingExpr(tbl, i)
				if err != nil {
					return err
				}
				if err := t.exec(ctx, fmt.Sprintf("UPDATE %s SET %s = %s", target, ident(c.name), fill)); err != nil {
					return err
				}
				t.modified[target] = true // a later ALTER must rebuild
			}
		case !sameType(e.typ, c.typ):
			if err := t.exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", target, ident(c.name), c.typ)); err != nil {
				return err
			}
		}
	}
	return t.commentColumns(ctx, tbl, existing)
}

func contains(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// missingExpr is the SQL value of column i's missing value.
func missingExpr(tbl *replica.Table, i int) (string, error) {
	col := tbl.Columns[i]
	v, err := converters(&replica.Table{Columns: []replica.Column{col}}).text(tbl, 0, []byte(*col.Missing))
	if err != nil {
		return "", err
	}
	return castExpr(col, literal(v.(string))), nil
}

// rebuild reshapes a table by copying it. DuckDB cannot commit a
// transaction that updates or deletes rows of a table and then alters it,
// and merges do exactly that, so a table this transaction has modified is
// rebuilt instead: same data, new shape, one transaction.
func (t *tx) rebuild(ctx context.Context, tbl *replica.Table, want []colDef, from map[string]string) error {
	target := ident(tbl.Schema, tbl.Name)
	tmp := tbl.Name + "__pgcdc_rebuild"
	exprs := make([]string, len(want))
	for i, c := range want {
		old, ok := from[c.name]
		switch {
		case ok:
			exprs[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", ident(old), c.typ, ident(c.name))
		case i < len(tbl.Columns) && tbl.Columns[i].Missing != nil:
			fill, err := missingExpr(tbl, i)
			if err != nil {
				return err
			}
			exprs[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", fill, c.typ, ident(c.name))
		default:
			exprs[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.typ, ident(c.name))
		}
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE %s AS SELECT %s FROM %s", ident(tbl.Schema, tmp), strings.Join(exprs, ", "), target),
		"DROP TABLE " + target,
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", ident(tbl.Schema, tmp), ident(tbl.Name)),
	} {
		if err := t.exec(ctx, q); err != nil {
			return err
		}
	}
	return t.commentColumns(ctx, tbl, nil)
}

// attnumComment marks a column as pgcdc's and records its source attnum.
const attnumComment = "pgcdc attnum "

// commentColumns records each column's attnum where it is not recorded yet.
func (t *tx) commentColumns(ctx context.Context, tbl *replica.Table, existing map[string]destColumn) error {
	for _, c := range tbl.Columns {
		if c.Num == 0 || existing[c.Name].num == c.Num {
			continue
		}
		q := fmt.Sprintf("COMMENT ON COLUMN %s IS '%s%d'", ident(tbl.Schema, tbl.Name, c.Name), attnumComment, c.Num)
		if err := t.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

type destColumn struct {
	typ string
	num int // source attnum from the column comment; 0 for metadata columns
}

type colDef struct{ name, typ string }

func tableColumns(tbl *replica.Table) []colDef {
	defs := make([]colDef, 0, len(tbl.Columns)+2)
	for _, c := range tbl.Columns {
		defs = append(defs, colDef{c.Name, columnType(c)})
	}
	defs = append(defs, colDef{replica.LSNColumn, "BIGINT"})
	if tbl.History {
		defs = append(defs, colDef{replica.ValidFromColumn, "TIMESTAMPTZ"}, colDef{replica.ValidToColumn, "TIMESTAMPTZ"},
			colDef{replica.ValidToLSNColumn, "BIGINT"})
	}
	if tbl.HasDeletedTS {
		defs = append(defs, colDef{replica.DeletedTSColumn, "TIMESTAMPTZ"})
	}
	return defs
}

func sameType(have, want string) bool {
	norm := func(s string) string {
		s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
		switch s {
		case "TIMESTAMPWITHTIMEZONE":
			return "TIMESTAMPTZ"
		case "TIMEWITHTIMEZONE":
			return "TIMETZ"
		}
		return s
	}
	return norm(have) == norm(want)
}

// columns returns the table's columns, or nil when it does not exist.
func (t *tx) columns(ctx context.Context, schema, name string) (map[string]destColumn, error) {
	rows, err := t.conn.QueryContext(ctx, `SELECT column_name, data_type, COALESCE(comment, '') FROM duckdb_columns()
		WHERE database_name = current_database() AND schema_name = ? AND table_name = ?`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("duckdb: read columns: %w", err)
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

// Load appends snapshot rows.
func (t *tx) Load(ctx context.Context, tbl *replica.Table, rows []replica.Row, lsn uint64) error {
	if err := t.mergeAll(ctx); err != nil {
		return err
	}
	convs := converters(tbl)
	stage, release, err := t.stageRows(tbl, len(rows), false, func(app func(...driver.Value) error) error {
		for _, r := range rows {
			vals := make([]driver.Value, 0, len(r.Values)+4)
			vals = append(vals, "A", int64(lsn), snapshotTime(tbl), nil, int64(1))
			vals, err := convs.appendRow(vals, tbl, r.Values)
			if err != nil {
				return err
			}
			if err := app(vals...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer release()
	return t.exec(ctx, insertFromStage(tbl, stage, ""))
}

// columnConverters holds each column's text rewrite (nil: none).
type columnConverters []converter

func converters(tbl *replica.Table) columnConverters {
	cs := make(columnConverters, len(tbl.Columns))
	for i, c := range tbl.Columns {
		cs[i] = converterFor(c)
	}
	return cs
}

// appendRow appends the staged values of a whole row to dst.
func (cs columnConverters) appendRow(dst []driver.Value, tbl *replica.Table, values [][]byte) ([]driver.Value, error) {
	for i, v := range values {
		tv, err := cs.text(tbl, i, v)
		if err != nil {
			return nil, err
		}
		dst = append(dst, tv)
	}
	return dst, nil
}

// text is the staged value of column i: NULL, or the converted text.
func (cs columnConverters) text(tbl *replica.Table, i int, v []byte) (driver.Value, error) {
	out, err := cs.convert(tbl, i, v)
	if out == nil || err != nil {
		return nil, err
	}
	return string(out), nil
}

// convert is value v of column i as DuckDB's cast reads it, nil for NULL.
func (cs columnConverters) convert(tbl *replica.Table, i int, v []byte) ([]byte, error) {
	if v == nil || cs[i] == nil {
		return v, nil
	}
	out, err := cs[i](v)
	if err != nil {
		return nil, fmt.Errorf("%s column %s: %w", tbl.QualifiedSource(), tbl.Columns[i].Name, err)
	}
	return out, nil
}

// stageRows collects a batch for the pgcdc_stage table function and returns
// the table expression that reads it. Its columns are _op, _lsn, _ts, _u
// (which values are unchanged TOAST), _n (how many equal rows), the lookup
// key when asked, then the data columns as text.
func (t *tx) stageRows(tbl *replica.Table, n int, lookup bool, fill func(func(...driver.Value) error) error) (string, func(), error) {
	specs := []colSpec{{"_op", duckdb.TYPE_VARCHAR}, {"_lsn", duckdb.TYPE_BIGINT}, {"_ts", duckdb.TYPE_TIMESTAMP_TZ}, {"_u", duckdb.TYPE_VARCHAR}, {"_n", duckdb.TYPE_BIGINT}}
	if lookup {
		for i := range tbl.KeyIndexes() {
			specs = append(specs, colSpec{fmt.Sprintf("_l%d", i), duckdb.TYPE_VARCHAR})
		}
	}
	for i := range tbl.Columns {
		specs = append(specs, colSpec{fmt.Sprintf("c%d", i), duckdb.TYPE_VARCHAR})
	}
	cols, err := columnInfos(specs...)
	if err != nil {
		return "", nil, err
	}
	rows := make([][]driver.Value, 0, n)
	err = fill(func(vals ...driver.Value) error {
		rows = append(rows, vals)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("duckdb: staging %d rows for %s: %w", n, tbl.Qualified(), err)
	}
	expr, release := stage(cols, rows)
	return expr, release, nil
}

// insertFromStage is the INSERT that casts staged text rows into tbl.
func insertFromStage(tbl *replica.Table, stage, where string) string {
	cols := make([]string, 0, len(tbl.Columns)+2)
	exprs := make([]string, 0, len(tbl.Columns)+2)
	for i, c := range tbl.Columns {
		cols = append(cols, ident(c.Name))
		exprs = append(exprs, castExpr(c, fmt.Sprintf("c%d", i)))
	}
	cols = append(cols, ident(replica.LSNColumn))
	exprs = append(exprs, "_lsn")
	if tbl.History {
		cols = append(cols, ident(replica.ValidFromColumn))
		exprs = append(exprs, "_ts")
	}
	if tbl.HasDeletedTS {
		cols = append(cols, ident(replica.DeletedTSColumn))
		exprs = append(exprs, "_ts")
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s %s", ident(tbl.Schema, tbl.Name),
		strings.Join(cols, ", "), strings.Join(exprs, ", "), stage, where)
}

func ident(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(q, ".")
}
