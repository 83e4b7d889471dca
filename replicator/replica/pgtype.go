package replica

// PostgresTypeSQL is a SQL expression, for a Postgres catalog query, that
// names the type with OID expression typ and modifier expression mod the way
// Column.TypeSQL holds it: format_type's output for pg_catalog's types and
// arrays of them, and the schema-qualified name of any other type, which
// format_type leaves unqualified when the session's search_path finds it.
// The engine reads the source's types with it and a Postgres destination
// its own, so the two compare as strings.
func PostgresTypeSQL(typ, mod string) string {
	return `(SELECT CASE
		WHEN tt.typnamespace = 'pg_catalog'::regnamespace OR et.typnamespace = 'pg_catalog'::regnamespace THEN format_type(tt.oid, ` + mod + `)
		WHEN et.oid IS NOT NULL THEN quote_ident(en.nspname) || '.' || quote_ident(et.typname) || '[]'
		ELSE quote_ident(tn.nspname) || '.' || quote_ident(tt.typname) END
		FROM pg_type tt JOIN pg_namespace tn ON tn.oid = tt.typnamespace
		LEFT JOIN pg_type et ON tt.typcategory = 'A' AND tt.typelem <> 0 AND et.oid = tt.typelem
		LEFT JOIN pg_namespace en ON en.oid = et.typnamespace
		WHERE tt.oid = ` + typ + `)`
}
