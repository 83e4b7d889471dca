package duckdb

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	pgsql "github.com/pgcdc/pgcdc/sql"
)

// The Postgres catalog of client sessions. psql, pgJDBC and BI tools
// describe the database by querying pg_catalog and information_schema and
// calling Postgres's catalog functions; DuckDB's own pg_catalog is a thin
// sketch with DuckDB's types. pgcdc serves a stand-in: views and macros in
// an in-memory database attached as catalogDatabase (pgcatalog.sql), filled
// from DuckDB's catalog, pgcdc's record of each replicated column's source
// type (_pgcdc.columns), Postgres's built-in types and keywords (the
// embedded CSV files, dumped from Postgres's own catalogs) and pgcdc's
// function catalog. Client statements reach it through rewrite.go.

// catalogDatabase is the attached in-memory database that holds the
// stand-in catalog; its schemas pg and info are pg_catalog and
// information_schema. The name starts with _pgcdc, so the policy lets
// clients only read it.
const catalogDatabase = "_pgcdc_catalog"

//go:embed pgcatalog.sql
var catalogSQL string

//go:embed pgcatalog_types.csv
var catalogTypesCSV string

//go:embed pgcatalog_procs.csv
var catalogProcsCSV string

//go:embed pgcatalog_keywords.csv
var catalogKeywordsCSV string

// functionsOID is the first OID of pgcdc's functions in pg_proc; the pgcdc
// schema is catalogSchemaOID.
const (
	functionsOID     = 9001
	catalogSchemaOID = 9000
)

// The embedded CSV files are Postgres 15's own catalog rows, dumped with
// psql's \copy from a pg_catalog the way the comments at the top of
// pgcatalog.sql say: built-in types (pg_type with format_type's spelling),
// the functions those types name (typinput and friends), and keywords.

// installCatalog attaches the catalog database and creates the stand-in
// catalog in it. It runs at every Open, before the database is closed to
// clients; a second Open of the same file in one process finds it attached
// and replaces its objects.
func installCatalog(ctx context.Context, db *sql.DB) (*catalogRewriter, error) {
	fns, err := pgsql.LoadCatalog()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var dbName string
	if err := conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+ident(catalogDatabase)); err != nil {
		return nil, fmt.Errorf("attach the catalog: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(catalogDatabase, "pg")); err != nil {
		return nil, err
	}
	tables, err := catalogTables(fns)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, tables); err != nil {
		return nil, fmt.Errorf("catalog tables: %w", err)
	}
	body := strings.NewReplacer(
		"{{C}}", ident(catalogDatabase),
		"{{DB}}", ident(dbName),
		"{{DBNAME}}", strings.ReplaceAll(dbName, "'", "''"),
		"{{DATNAME}}", strings.ReplaceAll(dbName, "'", "''"),
		"{{STARTED}}", time.Now().UTC().Format(time.RFC3339Nano),
		"{{RESERVED}}", reservedKeywords(),
	).Replace(catalogSQL)
	// Views and macros bind what they name when they are created, so each
	// needs the ones it uses first; rather than keep the file in that
	// order, statements that fail are retried until a round creates none.
	var pending []string
	for _, st := range strings.Split(body, ";\n") {
		if strings.TrimSpace(stripComments(st)) != "" {
			pending = append(pending, st)
		}
	}
	for len(pending) > 0 {
		var failed []string
		var first error
		for _, st := range pending {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				failed = append(failed, st)
				if first == nil {
					first = fmt.Errorf("catalog: %w\n%s", err, st)
				}
			}
		}
		if len(failed) == len(pending) {
			return nil, first
		}
		pending = failed
	}
	return loadRewriter(ctx, conn)
}

// loadRewriter reads the stand-in's view and macro names.
func loadRewriter(ctx context.Context, conn *sql.Conn) (*catalogRewriter, error) {
	r := &catalogRewriter{relations: map[string]string{}, functions: map[string]bool{}}
	rows, err := conn.QueryContext(ctx, `SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ?
		UNION ALL SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'pg' AND table_name LIKE 'pg\_%' ESCAPE '\'`,
		catalogDatabase, catalogDatabase)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			return nil, err
		}
		if schema == "info" {
			name = "info." + name
		}
		r.relations[name] = schema
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	frows, err := conn.QueryContext(ctx, `SELECT DISTINCT function_name FROM duckdb_functions() WHERE database_name = ? AND schema_name = 'pg'`, catalogDatabase)
	if err != nil {
		return nil, err
	}
	defer frows.Close()
	for frows.Next() {
		var name string
		if err := frows.Scan(&name); err != nil {
			return nil, err
		}
		r.functions[name] = true
	}
	return r, frows.Err()
}

// stripComments drops -- comments from a statement of pgcatalog.sql.
func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// catalogTables is the SQL that creates and fills the catalog's tables:
// built-in types, keywords and pgcdc's functions.
func catalogTables(fns *pgsql.Catalog) (string, error) {
	var b strings.Builder
	c := ident(catalogDatabase, "pg")
	types, err := csv.NewReader(strings.NewReader(catalogTypesCSV)).ReadAll()
	if err != nil {
		return "", fmt.Errorf("pgcatalog_types.csv: %w", err)
	}
	fmt.Fprintf(&b, `CREATE OR REPLACE TABLE %s.types (oid BIGINT, typname VARCHAR, typlen SMALLINT, typbyval BOOLEAN, typtype VARCHAR,
		typcategory VARCHAR, typispreferred BOOLEAN, typdelim VARCHAR, typelem BIGINT, typarray BIGINT, typinput BIGINT,
		typoutput BIGINT, typreceive BIGINT, typsend BIGINT, typalign VARCHAR, typstorage VARCHAR, typcollation BIGINT, fmt VARCHAR);
		INSERT INTO %s.types VALUES `, c, c)
	for i, r := range types[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + r[0] + ", " + literal(r[1]) + ", " + r[2] + ", " + boolSQL(r[3]))
		for _, v := range r[4:6] {
			b.WriteString(", " + literal(v))
		}
		b.WriteString(", " + boolSQL(r[6]) + ", " + literal(r[7]) + ", " + strings.Join(r[8:14], ", "))
		for _, v := range r[14:16] {
			b.WriteString(", " + literal(v))
		}
		b.WriteString(", " + r[16] + ", " + literal(r[17]) + ")")
	}
	b.WriteString(";\n")
	procs, err := csv.NewReader(strings.NewReader(catalogProcsCSV)).ReadAll()
	if err != nil {
		return "", fmt.Errorf("pgcatalog_procs.csv: %w", err)
	}
	fmt.Fprintf(&b, `CREATE OR REPLACE TABLE %s.procs (oid BIGINT, proname VARCHAR, prorettype BIGINT, pronargs INTEGER, prokind VARCHAR);
		INSERT INTO %s.procs VALUES `, c, c)
	for i, r := range procs[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s)", r[0], literal(r[1]), r[2], r[3], literal(r[4]))
	}
	b.WriteString(";\n")
	kws, err := csv.NewReader(strings.NewReader(catalogKeywordsCSV)).ReadAll()
	if err != nil {
		return "", fmt.Errorf("pgcatalog_keywords.csv: %w", err)
	}
	fmt.Fprintf(&b, `CREATE OR REPLACE TABLE %s.keywords (word VARCHAR, catcode VARCHAR, barelabel BOOLEAN, catdesc VARCHAR, baredesc VARCHAR);
		INSERT INTO %s.keywords VALUES `, c, c)
	for i, r := range kws[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s)", literal(r[0]), literal(r[1]), boolSQL(r[2]), literal(r[3]), literal(r[4]))
	}
	b.WriteString(";\n")
	fmt.Fprintf(&b, `CREATE OR REPLACE TABLE %s.functions (oid BIGINT, proname VARCHAR, pronargs INTEGER, pronargdefaults INTEGER,
		proargtypes BIGINT[], proallargtypes BIGINT[], proargmodes VARCHAR[], proargnames VARCHAR[], prosrc VARCHAR,
		arguments VARCHAR, identity_arguments VARCHAR, result VARCHAR, description VARCHAR);`, c)
	if fns != nil && len(fns.Functions) > 0 {
		fmt.Fprintf(&b, "INSERT INTO %s.functions VALUES ", c)
		for i, f := range fns.Functions {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(functionRow(functionsOID+i, f))
		}
		b.WriteString(";")
	}
	return b.String(), nil
}

// typeFormats is format_type's spelling of each built-in type, by OID.
var typeFormats = func() map[uint32]string {
	m := map[uint32]string{}
	rows, _ := csv.NewReader(strings.NewReader(catalogTypesCSV)).ReadAll()
	for _, r := range rows {
		if oid, err := strconv.ParseUint(r[0], 10, 32); err == nil && len(r) > 17 {
			m[uint32(oid)] = r[17]
		}
	}
	return m
}()

// functionRow is one pg_proc row of pgcdc's function f, with the strings
// Postgres's pg_get_function_arguments and pg_get_function_result would
// print for it.
func functionRow(oid int, f *pgsql.Function) string {
	var args, ident, names, modes, in, all []string
	typ := func(t pgsql.Type) string {
		if f := typeFormats[t.OID]; f != "" {
			return f
		}
		return t.Name
	}
	defaults := 0
	for _, p := range f.Params {
		a := p.Name + " " + typ(p.Type)
		ident = append(ident, a)
		if p.HasDefault {
			a += " DEFAULT " + defaultSQL(p.Default, typ(p.Type))
			defaults++
		}
		args = append(args, a)
		names = append(names, literal(p.Name))
		modes = append(modes, "'i'")
		in = append(in, strconv.FormatUint(uint64(p.Type.OID), 10))
	}
	all = append(all, in...)
	var result []string
	for _, r := range f.Result {
		result = append(result, r.Name+" "+typ(r.Type))
		names = append(names, literal(r.Name))
		modes = append(modes, "'t'")
		all = append(all, strconv.FormatUint(uint64(r.Type.OID), 10))
	}
	return fmt.Sprintf("(%d, %s, %d, %d, [%s]::BIGINT[], [%s]::BIGINT[], [%s]::VARCHAR[], [%s]::VARCHAR[], %s, %s, %s, %s, %s)",
		oid, literal(f.Name), len(f.Params), defaults, strings.Join(in, ", "), strings.Join(all, ", "),
		strings.Join(modes, ", "), strings.Join(names, ", "), literal(f.Name),
		literal(strings.Join(args, ", ")), literal(strings.Join(ident, ", ")),
		literal("TABLE("+strings.Join(result, ", ")+")"), literal(f.Comment))
}

// defaultSQL prints a parameter's default the way Postgres's
// pg_get_function_arguments does: typed literals and NULLs carry a cast,
// booleans and integers do not.
func defaultSQL(v any, typ string) string {
	switch v := v.(type) {
	case nil:
		return "NULL::" + typ
	case bool:
		return strconv.FormatBool(v)
	case int, int32, int64:
		return fmt.Sprint(v)
	case string:
		return literal(v) + "::" + typ
	}
	return literal(fmt.Sprint(v)) + "::" + typ
}

func boolSQL(v string) string {
	if v == "t" {
		return "true"
	}
	return "false"
}

// reservedKeywords is a SQL list of the keywords quote_ident quotes: all
// but the unreserved ones.
func reservedKeywords() string {
	rows, _ := csv.NewReader(strings.NewReader(catalogKeywordsCSV)).ReadAll()
	var words []string
	for _, r := range rows[1:] {
		if len(r) > 1 && r[1] != "U" {
			words = append(words, literal(r[0]))
		}
	}
	return "[" + strings.Join(words, ", ") + "]"
}
