-- Grafana's PostgreSQL data source: the version check on connect.
-- Origin: grafana/grafana public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
-- (getVersion, commit 12f912ab8d010f4d95a4043a0efaa20fc4ca0100); pgcdc reports server version 16, the
-- reference is compared on the major version only.
SELECT current_setting('server_version_num')::int/100 >= 1500 AS "version at least 15"
