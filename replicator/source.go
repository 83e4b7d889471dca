package replicator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// sessionSettings make the source print values in forms that are stable and
// lossless: ISO dates, UTC, full float precision, hex bytea. They apply to the
// snapshot connection and, as walsender GUCs, to the pgoutput stream too, so
// both produce identical text for the same value.
var sessionSettings = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "pgcdc",
	"client_encoding":    "UTF8",
}

// connConfig parses the source DSN. A parse error is reported without the
// DSN, which may carry a password.
// streamReadBuffer is the read buffer of a replication connection.
const streamReadBuffer = 256 << 10

func connConfig(dsn string, replication bool) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, Errorf(CodeConnectionFailure, "source: invalid connection string (it is not shown because it may contain a password)")
	}
	for k, v := range sessionSettings {
		cfg.RuntimeParams[k] = v
	}
	if replication {
		cfg.RuntimeParams["replication"] = "database"
		// pgconn reads the socket 8 kB at a time; a stream's messages come
		// back to back, and bigger reads take a fraction of the system calls.
		cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
			return pgproto3.NewFrontend(bufio.NewReaderSize(r, streamReadBuffer), w)
		}
	}
	return cfg, nil
}

func (r *Replicator) connect(ctx context.Context) (*pgx.Conn, error) {
	pcfg, err := connConfig(r.source, false)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Config = *pcfg
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, sourceError("cannot connect", err)
	}
	return conn, nil
}

func (r *Replicator) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := connConfig(r.source, true)
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, sourceError("cannot open a replication connection", err)
	}
	return conn, nil
}

// checkSource verifies the source can do logical replication.
func checkSource(ctx context.Context, conn *pgx.Conn) error {
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return sourceError("reading wal_level", err)
	}
	if level != "logical" {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("source: wal_level is %q, logical replication needs wal_level = logical", level),
			Hint:    "Set wal_level = logical in the source's postgresql.conf and restart it."}
	}
	return nil
}

// sourceTable is a table as the source catalog describes it now.
type sourceTable struct {
	OID     uint32
	Schema  string
	Name    string
	Columns []replica.Column
	Kind    byte // 'r' table, 'p' partitioned table
	// Identity is relreplident: 'd' default, 'f' full, 'i' index, 'n' nothing.
	Identity byte
	// Rows is the planner's estimate, for progress percentages.
	Rows float64
	// FullRow: no key, REPLICA IDENTITY FULL; rows are matched on all columns.
	FullRow bool
	// Types are the user-defined types the columns use.
	Types []replica.TypeDef
}

// hasKey reports whether the table has a merge key.
func (t *sourceTable) hasKey() bool {
	for _, c := range t.Columns {
		if c.Key {
			return true
		}
	}
	return false
}

// listTables returns the tables and partitioned tables (not partitions) of
// schema, by name.
func listTables(ctx context.Context, conn *pgx.Conn, schema string) ([]string, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return nil, sourceError("reading schemas", err)
	}
	if !exists {
		return nil, Errorf(CodeInvalidSchema, "schema %q does not exist in the source", schema)
	}
	rows, err := conn.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname`, schema)
	if err != nil {
		return nil, sourceError("listing tables", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, sourceError("listing tables", err)
}

// keyOrder picks the merge key among a table's primary key and replica
// identity index: the columns old-key tuples carry. Under REPLICA IDENTITY
// USING INDEX that is the identity index, even when a primary key exists,
// because a delete sends only those columns; otherwise the primary key.
const keyOrder = `ORDER BY (i.indisreplident AND (SELECT relreplident FROM pg_class WHERE oid = i.indrelid) = 'i') DESC,
			i.indisprimary DESC LIMIT 1`

// describeTable reads a table's columns, types and merge key from the
// catalog. The key is chosen by keyOrder; REPLICA IDENTITY FULL alone does
// not make every column a key.
func describeTable(ctx context.Context, conn *pgx.Conn, schema, name string) (*sourceTable, error) {
	t := &sourceTable{Schema: schema, Name: name}
	err := conn.QueryRow(ctx, `
		SELECT c.oid, c.relkind, c.relreplident,
		       -- reltuples is -1 until the first ANALYZE; the statistics
		       -- counters know the row count of a freshly loaded table.
		       CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8
		            ELSE COALESCE((SELECT sum(s.n_live_tup) FROM pg_stat_user_tables s
		                           WHERE s.relid = c.oid OR s.relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = c.oid)), 0)::float8
		       END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&t.OID, &t.Kind, &t.Identity, &t.Rows)
	if err == pgx.ErrNoRows {
		return nil, Errorf(CodeUndefinedTable, "table %q does not exist in source schema %q", name, schema)
	}
	if err != nil {
		return nil, sourceError("describing table", err)
	}
	rows, err := conn.Query(ctx, `
		SELECT a.attname, r.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
		       format_type(a.atttypid, a.atttypmod), `+typeSQL("a.atttypid", "a.atttypmod")+`, a.atttypid,
		       COALESCE(a.attnum = ANY (k.cols), false),
		       CASE WHEN r.typcategory = 'A' THEN `+baseTypeSQL("r.typelem")+` ELSE 0 END,
		       GREATEST(a.attndims, CASE WHEN r.typcategory = 'A' THEN 1 ELSE 0 END),
		       a.attnum, `+missingSQL+`, a.atthasdef, a.attnotnull, COALESCE(col_description(a.attrelid, a.attnum), '')
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_type r ON r.oid = `+baseTypeSQL("a.atttypid")+`
		LEFT JOIN LATERAL (
			SELECT i.indkey::int2[] AS cols FROM pg_index i
			WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident)
			`+keyOrder+`) k ON true
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, t.OID)
	if err != nil {
		return nil, sourceError("describing table", err)
	}
	var declared []uint32
	for rows.Next() {
		var c replica.Column
		var dims int32
		var num int16
		var oid uint32
		if err := rows.Scan(&c.Name, &c.TypeOID, &c.TypeMod, &c.TypeName, &c.TypeSQL, &oid, &c.Key, &c.ElemOID, &dims, &num, &c.Missing, &c.HasDefault, &c.NotNull, &c.Comment); err != nil {
			rows.Close()
			return nil, sourceError("describing table", err)
		}
		c.Dims = int(dims)
		c.Num = int(num)
		t.Columns = append(t.Columns, c)
		declared = append(declared, oid)
	}
	if err := rows.Err(); err != nil {
		return nil, sourceError("describing table", err)
	}
	t.Types, err = userTypes(ctx, conn, declared)
	return t, err
}

// missingSQL reads a column's missing value (see Column.Missing) as text.
const missingSQL = `CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END`

// catalogColumn is what the catalog says now about a column of a relation
// the stream describes.
type catalogColumn struct {
	Key        bool
	Dims       int
	Num        int
	Missing    *string
	HasDefault bool
	NotNull    bool
	Comment    string
}

// relationColumns reads the columns of the relation with OID relid as the
// catalog has them now: merge key, array dimensions, attnum, missing value.
func relationColumns(ctx context.Context, conn *pgx.Conn, relid uint32) (map[string]catalogColumn, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname, COALESCE(a.attnum = ANY (k.cols), false), a.attndims, a.attnum, `+missingSQL+`, a.atthasdef, a.attnotnull,
		       COALESCE(col_description(a.attrelid, a.attnum), '')
		FROM pg_attribute a
		LEFT JOIN LATERAL (
			SELECT i.indkey::int2[] AS cols FROM pg_index i
			WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident)
			`+keyOrder+`) k ON true
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, relid)
	if err != nil {
		return nil, sourceError("reading columns", err)
	}
	defer rows.Close()
	cols := map[string]catalogColumn{}
	for rows.Next() {
		var name string
		var c catalogColumn
		var dims int32
		var num int16
		if err := rows.Scan(&name, &c.Key, &dims, &num, &c.Missing, &c.HasDefault, &c.NotNull, &c.Comment); err != nil {
			return nil, sourceError("reading columns", err)
		}
		c.Dims, c.Num = int(dims), int(num)
		cols[name] = c
	}
	return cols, sourceError("reading columns", rows.Err())
}

// baseTypeSQL is the SQL for the base type of type OID expr: domains,
// including domains over domains, resolve to the type they constrain.
func baseTypeSQL(expr string) string {
	return `(WITH RECURSIVE b(oid, base, typtype) AS (
		SELECT oid, typbasetype, typtype FROM pg_type WHERE oid = ` + expr + `
		UNION ALL SELECT t.oid, t.typbasetype, t.typtype FROM pg_type t JOIN b ON t.oid = b.base WHERE b.typtype = 'd')
		SELECT oid FROM b WHERE typtype <> 'd' LIMIT 1)`
}

// typeInfo is a source type resolved for storage: domains become their base
// type.
type typeInfo struct {
	OID     uint32
	TypeMod int32 // -1 unless the domain fixes one
	Name    string
	SQL     string // see replica.Column.TypeSQL
	ElemOID uint32
}

// resolveType looks up a type OID the stream mentions.
func resolveType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (typeInfo, error) {
	ti := typeInfo{OID: oid, TypeMod: typmod}
	var typtype byte
	var basemod int32
	err := conn.QueryRow(ctx, `SELECT t.typtype, t.typtypmod, format_type(t.oid, $2), `+typeSQL("t.oid", "$2")+`, r.oid,
		CASE WHEN r.typcategory = 'A' THEN `+baseTypeSQL("r.typelem")+` ELSE 0 END
		FROM pg_type t JOIN pg_type r ON r.oid = `+baseTypeSQL("t.oid")+` WHERE t.oid = $1`,
		oid, typmod).Scan(&typtype, &basemod, &ti.Name, &ti.SQL, &ti.OID, &ti.ElemOID)
	if err == pgx.ErrNoRows {
		ti.Name = fmt.Sprintf("oid %d", oid)
		return ti, nil
	}
	if err != nil {
		return ti, sourceError("reading type", err)
	}
	if typtype == 'd' {
		ti.TypeMod = basemod
	}
	return ti, nil
}

// publication describes what a publication publishes.
type publication struct {
	Insert, Update, Delete, Truncate bool
	ViaRoot                          bool
}

func readPublication(ctx context.Context, conn *pgx.Conn, name string) (publication, bool, error) {
	var p publication
	err := conn.QueryRow(ctx, `SELECT pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot
		FROM pg_publication WHERE pubname = $1`, name).Scan(&p.Insert, &p.Update, &p.Delete, &p.Truncate, &p.ViaRoot)
	if err == pgx.ErrNoRows {
		return p, false, nil
	}
	return p, err == nil, sourceError("reading publication", err)
}

func (p publication) insertOnly() bool { return p.Insert && !p.Update && !p.Delete }

// sameOps reports whether two publications publish the same operations.
func (p publication) sameOps(o publication) bool {
	return p.Insert == o.Insert && p.Update == o.Update && p.Delete == o.Delete && p.Truncate == o.Truncate
}

// ops is the publish list, as CREATE PUBLICATION takes it.
func (p publication) ops() string {
	var ops []string
	for _, op := range []struct {
		on   bool
		name string
	}{{p.Insert, "insert"}, {p.Update, "update"}, {p.Delete, "delete"}, {p.Truncate, "truncate"}} {
		if op.on {
			ops = append(ops, op.name)
		}
	}
	return strings.Join(ops, ", ")
}

// parsePublish validates a publish list such as "insert, update, delete".
func parsePublish(s string) (string, publication, error) {
	var p publication
	var ops []string
	for _, part := range strings.Split(s, ",") {
		op := strings.ToLower(strings.TrimSpace(part))
		switch op {
		case "insert":
			p.Insert = true
		case "update":
			p.Update = true
		case "delete":
			p.Delete = true
		case "truncate":
			p.Truncate = true
		default:
			return "", p, Errorf(CodeInvalidParameter, "publish: unrecognized operation %q (expected a list of insert, update, delete, truncate)", strings.TrimSpace(part))
		}
		ops = append(ops, op)
	}
	return strings.Join(ops, ", "), p, nil
}

// describeOID describes the table with OID oid as the catalog has it now;
// ok is false when it no longer exists.
func describeOID(ctx context.Context, conn *pgx.Conn, oid uint32) (*sourceTable, bool, error) {
	var schema, name string
	err := conn.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = $1 AND c.relkind IN ('r', 'p')`, oid).Scan(&schema, &name)
	if err == pgx.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, sourceError("describing table", err)
	}
	t, err := describeTable(ctx, conn, schema, name)
	return t, err == nil, err
}

// typeSQL is replica.PostgresTypeSQL: how a Postgres destination declares a
// column's type.
func typeSQL(typ, mod string) string { return replica.PostgresTypeSQL(typ, mod) }

// userTypes describes the types outside pg_catalog that columns of the
// given declared types use, directly or through domains, arrays,
// composites and ranges, each after the ones it depends on.
func userTypes(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]replica.TypeDef, error) {
	var out []replica.TypeDef
	seen := map[uint32]bool{}
	var visit func(oid uint32) error
	visit = func(oid uint32) error {
		if oid == 0 || seen[oid] {
			return nil
		}
		seen[oid] = true
		var nsp, name string
		var kind byte
		var builtin bool
		var elem, base, rel, sub uint32
		var baseSQL *string
		var notNull bool
		var def *string
		err := conn.QueryRow(ctx, `SELECT n.nspname, t.typname, t.typtype, n.nspname = 'pg_catalog',
			CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END, t.typbasetype, t.typrelid,
			COALESCE((SELECT rngsubtype FROM pg_range WHERE rngtypid = t.oid), 0),
			CASE WHEN t.typtype = 'd' THEN `+typeSQL("t.typbasetype", "t.typtypmod")+` END,
			t.typnotnull, t.typdefault
			FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).
			Scan(&nsp, &name, &kind, &builtin, &elem, &base, &rel, &sub, &baseSQL, &notNull, &def)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return sourceError("reading type", err)
		}
		if elem != 0 {
			return visit(elem) // an array: its element is what needs creating
		}
		if builtin {
			return nil
		}
		td := replica.TypeDef{Name: replica.TableName{Schema: nsp, Name: name}, Kind: kind}
		q := ident(nsp, name)
		switch kind {
		case 'e':
			rows, err := conn.Query(ctx, "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder", oid)
			if err != nil {
				return sourceError("reading enum", err)
			}
			if td.Labels, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return sourceError("reading enum", err)
			}
			labels := make([]string, len(td.Labels))
			for i, l := range td.Labels {
				labels[i] = quoteLiteral(l)
			}
			td.SQL = "CREATE TYPE " + q + " AS ENUM (" + strings.Join(labels, ", ") + ")"
		case 'd':
			if err := visit(base); err != nil {
				return err
			}
			sql := "CREATE DOMAIN " + q + " AS " + *baseSQL
			if def != nil {
				sql += " DEFAULT " + *def
			}
			if notNull {
				sql += " NOT NULL"
			}
			rows, err := conn.Query(ctx, "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY conname", oid)
			if err != nil {
				return sourceError("reading domain", err)
			}
			for rows.Next() {
				var cname, cdef string
				if err := rows.Scan(&cname, &cdef); err != nil {
					rows.Close()
					return sourceError("reading domain", err)
				}
				sql += " CONSTRAINT " + ident(cname) + " " + cdef
			}
			if err := rows.Err(); err != nil {
				return sourceError("reading domain", err)
			}
			td.SQL = sql
		case 'c':
			rows, err := conn.Query(ctx, `SELECT a.attname::text, a.atttypid, `+typeSQL("a.atttypid", "a.atttypmod")+`
				FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, rel)
			if err != nil {
				return sourceError("reading composite type", err)
			}
			var attrs []string
			var deps []uint32
			for rows.Next() {
				var aname, asql string
				var aoid uint32
				if err := rows.Scan(&aname, &aoid, &asql); err != nil {
					rows.Close()
					return sourceError("reading composite type", err)
				}
				attrs = append(attrs, ident(aname)+" "+asql)
				deps = append(deps, aoid)
			}
			if err := rows.Err(); err != nil {
				return sourceError("reading composite type", err)
			}
			for _, d := range deps {
				if err := visit(d); err != nil {
					return err
				}
			}
			td.SQL = "CREATE TYPE " + q + " AS (" + strings.Join(attrs, ", ") + ")"
		case 'r':
			if err := visit(sub); err != nil {
				return err
			}
			var subSQL string
			if err := conn.QueryRow(ctx, "SELECT "+typeSQL("$1::oid", "-1"), sub).Scan(&subSQL); err != nil {
				return sourceError("reading range type", err)
			}
			td.SQL = "CREATE TYPE " + q + " AS RANGE (subtype = " + subSQL + ")"
		case 'b':
			var ext *string
			if err := conn.QueryRow(ctx, `SELECT e.extname::text FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
				WHERE d.classid = 'pg_type'::regclass AND d.objid = $1 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'`, oid).Scan(&ext); err != nil && err != pgx.ErrNoRows {
				return sourceError("reading type's extension", err)
			}
			if ext != nil {
				td.Extension = *ext
			}
		default:
			return nil // pseudo-types and multiranges come with what defines them
		}
		out = append(out, td)
		return nil
	}
	for _, oid := range oids {
		if err := visit(oid); err != nil {
			return nil, err
		}
	}
	return out, nil
}
