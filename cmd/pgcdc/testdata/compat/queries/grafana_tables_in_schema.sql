-- Grafana's PostgreSQL data source: the tables of a chosen schema.
-- Origin: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
-- (showTables(schema) with schema = 'shop', commit 12f912ab8d010f4d95a4043a0efaa20fc4ca0100).
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'shop'
      ORDER BY 1
