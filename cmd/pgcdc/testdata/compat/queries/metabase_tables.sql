-- Metabase's PostgreSQL driver: sync's table list (describe-database).
-- Origin: metabase/metabase src/metabase/driver/postgres.clj, get-tables-sql with schemas ["shop"]
-- (HoneySQL rendered by hand), commit 370249b52907c64fb32de3739c1b2136abd9e960. The estimated
-- row count (the statistics collector's) is left out of the comparison by the outer SELECT.
SELECT schema, name, type, description FROM (
SELECT n.nspname AS schema, c.relname AS name,
       CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW'
                      WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS type,
       d.description AS description, stat.n_live_tup AS estimated_row_count
FROM pg_catalog.pg_class AS c
INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
LEFT JOIN pg_catalog.pg_description AS d ON (c.oid = d.objoid) AND (d.objsubid = 0) AND (d.classoid = 'pg_class'::regclass)
LEFT JOIN pg_stat_user_tables AS stat ON (n.nspname = stat.schemaname) AND (c.relname = stat.relname)
WHERE (c.relnamespace = n.oid) AND (n.nspname !~ '^pg_') AND (n.nspname <> 'information_schema')
  AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (n.nspname IN ('shop'))
ORDER BY type ASC, schema ASC, name ASC
) tables
