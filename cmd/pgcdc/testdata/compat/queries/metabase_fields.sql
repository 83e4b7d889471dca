-- Metabase's PostgreSQL driver: sync's column list (describe-fields), the first branch of its UNION ALL
-- (the second describes materialized views, which the replica has none of).
-- Origin: metabase/metabase src/metabase/driver/postgres.clj, describe-fields-sql :postgres with
-- schema-names ["shop"] (HoneySQL rendered by hand), commit 370249b52907c64fb32de3739c1b2136abd9e960.
SELECT c.column_name AS name,
       CASE WHEN c.udt_schema IN ('public', 'pg_catalog') THEN format('%s', c.udt_name)
            ELSE format('"%s"."%s"', c.udt_schema, c.udt_name) END AS "database-type",
       c.ordinal_position - 1 AS "database-position",
       c.table_schema AS "table-schema",
       c.table_name AS "table-name",
       pk.column_name IS NOT NULL AS "pk?",
       col_description(CAST(CAST(format('%I.%I', CAST(c.table_schema AS text), CAST(c.table_name AS text)) AS regclass) AS oid), c.ordinal_position) AS "field-comment",
       ((column_default IS NULL) OR (LOWER(column_default) = 'null')) AND (is_nullable = 'NO')
         AND NOT (((column_default IS NOT NULL) AND (column_default LIKE '%nextval(%')) OR (is_identity <> 'NO')) AS "database-required",
       ((column_default IS NOT NULL) AND (column_default LIKE '%nextval(%')) OR (is_identity <> 'NO') AS "database-is-auto-increment"
FROM information_schema.columns AS c
LEFT JOIN (SELECT tc.table_schema, tc.table_name, kc.column_name
           FROM information_schema.table_constraints AS tc
           INNER JOIN information_schema.key_column_usage AS kc
             ON (tc.constraint_name = kc.constraint_name) AND (tc.table_schema = kc.table_schema) AND (tc.table_name = kc.table_name)
           WHERE tc.constraint_type = 'PRIMARY KEY') AS pk
  ON (c.table_schema = pk.table_schema) AND (c.table_name = pk.table_name) AND (c.column_name = pk.column_name)
WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND (c.table_schema IN ('shop'))
ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC
