package duckdb

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func (t *tx) TableExists(ctx context.Context, schema, name string) (bool, error) {
	ok, err := tableExists(ctx, t.conn, schema, name)
	if err != nil {
		return false, fmt.Errorf("duckdb: %w", err)
	}
	return ok, nil
}

func (t *tx) DropTable(ctx context.Context, schema, name string) (bool, error) {
	if err := t.mergeAll(ctx); err != nil {
		return false, err
	}
	ok, err := t.TableExists(ctx, schema, name)
	if err != nil || !ok {
		return false, err
	}
	if err := t.exec(ctx, "DROP TABLE "+ident(schema, name)); err != nil {
		return true, err
	}
	return true, t.exec(ctx, "DELETE FROM "+ident(stateSchema, "columns")+" WHERE schema_name = ? AND table_name = ?", schema, name)
}

// RenameTable implements replica.Tx. DuckDB renames a table in place but
// cannot move one to another schema (ALTER TABLE ... SET SCHEMA is not
// implemented), so a move copies the rows and the column comments that
// record source attnums.
func (t *tx) RenameTable(ctx context.Context, from, to replica.TableName) error {
	if err := t.mergeAll(ctx); err != nil {
		return err
	}
	if exists, err := t.TableExists(ctx, to.Schema, to.Name); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("duckdb: cannot rename %s to %s: %s already exists", from, to, to)
	}
	src, dst := ident(from.Schema, from.Name), ident(to.Schema, to.Name)
	if err := t.exec(ctx, "UPDATE "+ident(stateSchema, "columns")+" SET schema_name = ?, table_name = ? WHERE schema_name = ? AND table_name = ?",
		to.Schema, to.Name, from.Schema, from.Name); err != nil {
		return err
	}
	defer func() {
		if t.modified[src] {
			delete(t.modified, src)
			t.modified[dst] = true
		}
	}()
	if from.Schema == to.Schema {
		return t.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s", src, ident(to.Name)))
	}
	rows, err := t.conn.QueryContext(ctx, `SELECT column_name, comment FROM duckdb_columns()
		WHERE database_name = current_database() AND schema_name = ? AND table_name = ? AND comment IS NOT NULL`, from.Schema, from.Name)
	if err != nil {
		return fmt.Errorf("duckdb: read columns: %w", err)
	}
	comments := map[string]string{}
	for rows.Next() {
		var c, comment string
		if err := rows.Scan(&c, &comment); err != nil {
			rows.Close()
			return err
		}
		comments[c] = comment
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + ident(to.Schema),
		fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", dst, src),
		"DROP TABLE " + src,
	} {
		if err := t.exec(ctx, q); err != nil {
			return err
		}
	}
	for c, comment := range comments {
		if err := t.exec(ctx, fmt.Sprintf("COMMENT ON COLUMN %s IS %s", ident(to.Schema, to.Name, c), literal(comment))); err != nil {
			return err
		}
	}
	return nil
}

// literal quotes s as a SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// columnsTableSQL creates _pgcdc.columns: each replicated column's source
// type (OID, modifier and format_type's spelling), its key position and
// whether it is NOT NULL, for the Postgres catalog that client sessions see
// (pgcatalog.go). The DuckDB table has DuckDB types; this is what the
// source declared. Metadata columns (_pg_lsn, ...) have no row.
const columnsTableSQL = `CREATE TABLE IF NOT EXISTS "_pgcdc"."columns" (
	schema_name VARCHAR NOT NULL,
	table_name VARCHAR NOT NULL,
	column_name VARCHAR NOT NULL,
	type_oid UBIGINT NOT NULL,
	typmod INTEGER NOT NULL,
	type_name VARCHAR NOT NULL,
	ndims INTEGER NOT NULL,
	key_position INTEGER NOT NULL,       -- 1-based among the key columns, 0 for none
	not_null BOOLEAN NOT NULL,
	comment VARCHAR)                     -- the source's column comment`

// recordColumns writes tbl's columns into _pgcdc.columns, replacing what
// was recorded for the table.
func (t *tx) recordColumns(ctx context.Context, tbl *replica.Table) error {
	if err := t.exec(ctx, "DELETE FROM "+ident(stateSchema, "columns")+" WHERE schema_name = ? AND table_name = ?", tbl.Schema, tbl.Name); err != nil {
		return err
	}
	key := 0
	for _, c := range tbl.Columns {
		pos := 0
		if c.Key {
			key++
			pos = key
		}
		if c.Hint != nil {
			// The user chose the DuckDB type; the catalog describes that.
			continue
		}
		name := c.TypeName
		if name == "" {
			name = c.TypeSQL
		}
		if err := t.exec(ctx, "INSERT INTO "+ident(stateSchema, "columns")+" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			tbl.Schema, tbl.Name, c.Name, uint64(c.TypeOID), c.TypeMod, name, c.Dims, pos, c.Key || c.NotNull, nullString(c.Comment)); err != nil {
			return err
		}
	}
	return nil
}
