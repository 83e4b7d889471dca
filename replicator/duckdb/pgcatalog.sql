-- The Postgres catalog that client sessions see over the DuckDB replica.
--
-- pgcatalog.go runs this once per database, in an in-memory database
-- attached as {{C}}: schema pg stands in for pg_catalog and schema info for
-- information_schema (DuckDB reserves both names), and rewrite.go points
-- clients' references there. {{DB}} is the replica file's database. Types
-- (pg.types) and keywords (pg.keywords) are loaded from Postgres's own
-- catalogs; our functions (pg.functions) from sql/catalog.sql.
--
-- The types, procs and keywords tables come from Postgres 15 (psql):
--   \copy (SELECT oid, typname, typlen, typbyval, typtype, typcategory, typispreferred, typdelim, typelem,
--     typarray, typinput::oid, typoutput::oid, typreceive::oid, typsend::oid, typalign, typstorage,
--     typcollation, format_type(oid, NULL) AS fmt FROM pg_type WHERE typnamespace = 11
--     AND typtype IN ('b','p','r','m','d') ORDER BY oid) TO 'pgcatalog_types.csv' CSV HEADER
--   \copy (SELECT oid, proname, prorettype, pronargs, prokind FROM pg_proc WHERE oid IN (the typinput,
--     typoutput, typreceive and typsend of those types) ORDER BY oid) TO 'pgcatalog_procs.csv' CSV HEADER
--   \copy (SELECT word, catcode, barelabel, catdesc, baredesc FROM pg_get_keywords() ORDER BY word)
--     TO 'pgcatalog_keywords.csv' CSV HEADER
--
-- OIDs: Postgres's for built-in types and pg_catalog (11), public (2200),
-- the bootstrap role (10); DuckDB's own for schemas, tables and views;
-- 1000000000 + table OID for a replicated table's primary key index and
-- 1100000000 + table OID for its constraint.

CREATE SCHEMA IF NOT EXISTS {{C}}.pg;
CREATE SCHEMA IF NOT EXISTS {{C}}.info;

-- Schemas clients never see: pgcdc's own, DuckDB's default main, and the
-- system schemas that the views below add themselves.
CREATE OR REPLACE MACRO {{C}}.pg.hidden_schema(s) AS
    s = 'main' OR s LIKE '\_pgcdc%' ESCAPE '\' OR s IN ('pg_catalog', 'information_schema');

-- A DuckDB type's Postgres OID, for columns pgcdc did not create.
CREATE OR REPLACE MACRO {{C}}.pg.duck_scalar_oid(t) AS CASE
    WHEN t = 'BOOLEAN' THEN 16 WHEN t = 'SMALLINT' THEN 21 WHEN t = 'INTEGER' THEN 23
    WHEN t = 'BIGINT' THEN 20 WHEN t IN ('HUGEINT', 'UBIGINT', 'UHUGEINT') OR t LIKE 'DECIMAL%' THEN 1700
    WHEN t IN ('TINYINT', 'UTINYINT', 'USMALLINT') THEN 21 WHEN t = 'UINTEGER' THEN 20
    WHEN t = 'FLOAT' THEN 700 WHEN t = 'DOUBLE' THEN 701 WHEN t = 'DATE' THEN 1082
    WHEN t = 'TIME' THEN 1083 WHEN t = 'TIME WITH TIME ZONE' THEN 1266
    WHEN t LIKE 'TIMESTAMP WITH TIME ZONE' THEN 1184 WHEN t LIKE 'TIMESTAMP%' THEN 1114
    WHEN t = 'INTERVAL' THEN 1186 WHEN t = 'UUID' THEN 2950 WHEN t = 'BLOB' THEN 17
    WHEN t = 'JSON' THEN 114 WHEN t = 'BIT' THEN 1562
    ELSE 25 END;
CREATE OR REPLACE MACRO {{C}}.pg.duck_type_oid(t) AS CASE
    WHEN t LIKE '%[]' THEN coalesce((SELECT typarray FROM {{C}}.pg.types WHERE oid = {{C}}.pg.duck_scalar_oid(t[1:-3])), 1009)
    ELSE {{C}}.pg.duck_scalar_oid(t) END;

CREATE OR REPLACE MACRO {{C}}.pg.duck_typmod(t) AS CASE
    WHEN t LIKE 'DECIMAL(%' THEN
        ((CAST(split_part(t[9:-2], ',', 1) AS INTEGER) << 16) + CAST(split_part(t[9:-2], ',', 2) AS INTEGER) + 4)
    ELSE -1 END;

-- Functions the views use.
CREATE OR REPLACE MACRO {{C}}.pg.quote_ident(s) AS
    CASE WHEN s IS NULL THEN NULL
        WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') AND NOT list_contains({{RESERVED}}, s) THEN s
        ELSE '"' || replace(s, '"', '""') || '"' END;
CREATE OR REPLACE MACRO {{C}}.pg.parse_ident(s) AS
    list_transform(regexp_extract_all(s, '("([^"]|"")*"|[^."]+)'),
        p -> CASE WHEN p[1] = '"' THEN replace(p[2:-2], '""', '"') ELSE lower(p) END);
CREATE OR REPLACE MACRO {{C}}.pg.quote_literal(s) AS '''' || replace(CAST(s AS VARCHAR), '''', '''''') || '''';
CREATE OR REPLACE MACRO {{C}}.pg.quote_nullable(s) AS coalesce({{C}}.pg.quote_literal(s), 'NULL');

CREATE OR REPLACE VIEW {{C}}.pg.pg_namespace AS
    SELECT CAST(11 AS BIGINT) AS oid, 'pg_catalog' AS nspname, CAST(10 AS BIGINT) AS nspowner, CAST(NULL AS VARCHAR[]) AS nspacl
    UNION ALL SELECT 99, 'pg_toast', 10, NULL
    UNION ALL SELECT 13000, 'information_schema', 10, NULL
    UNION ALL SELECT 9000, 'pgcdc', 10, NULL
    UNION ALL SELECT CASE WHEN schema_name = 'public' THEN 2200 ELSE oid END, schema_name, 10, NULL
        FROM system.main.duckdb_schemas()
        WHERE database_name = '{{DBNAME}}' AND NOT {{C}}.pg.hidden_schema(schema_name) AND schema_name <> 'pgcdc';

-- Replicated columns: DuckDB's columns with the source types pgcdc
-- recorded, where it did.
CREATE OR REPLACE VIEW {{C}}.pg.relcolumns AS
    SELECT t.table_oid AS attrelid, c.schema_name, c.table_name, c.column_name AS attname,
        CAST(c.column_index AS SMALLINT) AS attnum,
        CAST(coalesce(m.type_oid, {{C}}.pg.duck_type_oid(c.data_type)) AS BIGINT) AS atttypid,
        CAST(coalesce(m.typmod, {{C}}.pg.duck_typmod(c.data_type)) AS INTEGER) AS atttypmod,
        coalesce(m.type_name, NULL) AS type_name,
        CAST(coalesce(m.ndims, CASE WHEN c.data_type LIKE '%[]' THEN 1 ELSE 0 END) AS SMALLINT) AS attndims,
        coalesce(m.not_null, NOT c.is_nullable) AS attnotnull,
        coalesce(m.key_position, 0) AS key_position,
        c.column_default, m.comment
    FROM system.main.duckdb_columns() c
    JOIN system.main.duckdb_tables() t ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name
    LEFT JOIN {{DB}}._pgcdc.columns m ON m.schema_name = c.schema_name AND m.table_name = c.table_name AND m.column_name = c.column_name
    WHERE c.database_name = '{{DBNAME}}' AND NOT {{C}}.pg.hidden_schema(c.schema_name);

-- Replicated tables with a key: the primary key index and constraint
-- that Postgres has for it.
CREATE OR REPLACE VIEW {{C}}.pg.keyed_tables AS
    SELECT attrelid, schema_name, table_name, CAST(count(*) AS SMALLINT) AS nkeys,
        list(attnum ORDER BY key_position) AS keys,
        string_agg({{C}}.pg.quote_ident(attname), ', ' ORDER BY key_position) AS key_list
    FROM {{C}}.pg.relcolumns WHERE key_position > 0 GROUP BY attrelid, schema_name, table_name;

CREATE OR REPLACE VIEW {{C}}.pg.pg_class AS
    WITH ns AS (SELECT oid, nspname FROM {{C}}.pg.pg_namespace),
    rels AS (
        SELECT t.table_oid AS oid, t.table_name AS relname, t.schema_name, 'r' AS relkind,
            CAST(t.column_count AS SMALLINT) AS relnatts, t.estimated_size AS reltuples,
            t.table_oid IN (SELECT k.attrelid FROM {{C}}.pg.keyed_tables k) AS relhasindex,
            CAST(CASE WHEN t.temporary THEN 't' ELSE 'p' END AS VARCHAR) AS relpersistence, 2 AS relam
        FROM system.main.duckdb_tables() t WHERE t.database_name = '{{DBNAME}}' AND NOT {{C}}.pg.hidden_schema(t.schema_name)
        UNION ALL
        SELECT v.view_oid, v.view_name, v.schema_name, 'v', CAST(v.column_count AS SMALLINT), 0, false, 'p', 0
        FROM system.main.duckdb_views() v WHERE v.database_name = '{{DBNAME}}' AND NOT v.internal AND NOT {{C}}.pg.hidden_schema(v.schema_name)
        UNION ALL
        SELECT 1000000000 + k.attrelid, k.table_name || '_pkey', k.schema_name, 'i', k.nkeys, 0, false, 'p', 403
        FROM {{C}}.pg.keyed_tables k
)
    SELECT r.oid, r.relname, ns.oid AS relnamespace, CASE WHEN r.relkind IN ('r', 'v') THEN 1200000000 + r.oid ELSE 0 END AS reltype, CAST(0 AS BIGINT) AS reloftype,
        CAST(10 AS BIGINT) AS relowner, CAST(r.relam AS BIGINT) AS relam, r.oid AS relfilenode, CAST(0 AS BIGINT) AS reltablespace,
        CAST(0 AS INTEGER) AS relpages, CAST(r.reltuples AS FLOAT) AS reltuples, CAST(0 AS INTEGER) AS relallvisible,
        CAST(0 AS BIGINT) AS reltoastrelid, r.relhasindex, false AS relisshared, r.relpersistence,
        r.relkind, r.relnatts, CAST(0 AS SMALLINT) AS relchecks, false AS relhasrules, false AS relhastriggers,
        false AS relhassubclass, false AS relrowsecurity, false AS relforcerowsecurity, true AS relispopulated,
        CASE WHEN r.relkind = 'r' THEN 'd' ELSE 'n' END AS relreplident, false AS relispartition, CAST(0 AS BIGINT) AS relrewrite,
        CAST(0 AS BIGINT) AS relfrozenxid, CAST(0 AS BIGINT) AS relminmxid, CAST(NULL AS VARCHAR[]) AS relacl,
        CAST(NULL AS VARCHAR[]) AS reloptions, CAST(NULL AS VARCHAR) AS relpartbound, false AS relhasoids
    FROM rels r JOIN ns ON ns.nspname = r.schema_name
    UNION ALL
    SELECT oid, relname, 11, 0, 0, 10, 2, oid, 0, 0, 0, 0, 0, false, false, 'p', 'r', 0, 0, false, false, false, false, false, true,
        'n', false, 0, 0, 0, NULL, NULL, NULL, false
    FROM (VALUES (1247, 'pg_type'), (1249, 'pg_attribute'), (1255, 'pg_proc'), (1259, 'pg_class'), (2604, 'pg_attrdef'),
        (2606, 'pg_constraint'), (2609, 'pg_description'), (2610, 'pg_index'), (2615, 'pg_namespace'), (1262, 'pg_database'),
        (1260, 'pg_authid'), (2601, 'pg_am'), (3456, 'pg_collation')) sys(oid, relname);

CREATE OR REPLACE VIEW {{C}}.pg.pg_type AS
    SELECT oid, typname, CAST(11 AS BIGINT) AS typnamespace, CAST(10 AS BIGINT) AS typowner, typlen, typbyval, typtype,
        typcategory, typispreferred, true AS typisdefined, typdelim, CAST(0 AS BIGINT) AS typrelid, CAST(0 AS BIGINT) AS typsubscript,
        typelem, typarray, typinput, typoutput, typreceive, typsend, '-' AS typmodin, '-' AS typmodout, '-' AS typanalyze,
        typalign, typstorage, false AS typnotnull, CAST(0 AS BIGINT) AS typbasetype, CAST(-1 AS INTEGER) AS typtypmod,
        CAST(0 AS INTEGER) AS typndims, typcollation, CAST(NULL AS VARCHAR) AS typdefaultbin, CAST(NULL AS VARCHAR) AS typdefault,
        CAST(NULL AS VARCHAR[]) AS typacl
    FROM {{C}}.pg.types
    UNION ALL
    -- Types of the source outside pg_catalog (enums, domains' arrays, ...)
    -- that replicated columns use, under the name the source gave them.
    SELECT DISTINCT ON (m.type_oid) CAST(m.type_oid AS BIGINT), split_part(replace(m.type_name, '[]', ''), '.', -1), 2200, 10, -1, false,
        CASE WHEN m.type_name LIKE '%[]' THEN 'b' ELSE 'e' END, CASE WHEN m.type_name LIKE '%[]' THEN 'A' ELSE 'E' END,
        false, true, ',', 0, 0, 0, 0, 3504, 3505, 3532, 3533, '-', '-', '-', 'i', 'p', false, 0, -1, 0, 0, NULL, NULL, NULL
    FROM {{DB}}._pgcdc.columns m WHERE m.type_oid NOT IN (SELECT oid FROM {{C}}.pg.types)
    UNION ALL
    -- Each table's and view's row type, and the array of it.
    SELECT 1200000000 + c.oid, c.relname, c.relnamespace, 10, -1, false, 'c', 'C', false, true, ',', c.oid, 0, 0, 1300000000 + c.oid,
        2290, 2291, 2402, 2403, '-', '-', '-', 'd', 'x', false, 0, -1, 0, 0, NULL, NULL, NULL
    FROM {{C}}.pg.pg_class c WHERE c.relkind IN ('r', 'v') AND c.relnamespace <> 11
    UNION ALL
    SELECT 1300000000 + c.oid, '_' || c.relname, c.relnamespace, 10, -1, false, 'b', 'A', false, true, ',', 0, 0, 1200000000 + c.oid, 0,
        750, 751, 2400, 2401, '-', '-', '-', 'd', 'x', false, 0, -1, 0, 0, NULL, NULL, NULL
    FROM {{C}}.pg.pg_class c WHERE c.relkind IN ('r', 'v') AND c.relnamespace <> 11;

CREATE OR REPLACE MACRO {{C}}.pg.format_type(typid, typmod) AS
    CASE WHEN typid IS NULL THEN NULL
    -- Types outside pg_catalog: a table's row type, or the source's name for it.
    WHEN typid >= 1200000000 THEN (SELECT any_value(_format_type_y.table_name) || CASE WHEN typid >= 1300000000 THEN '[]' ELSE '' END
        FROM system.main.duckdb_tables() _format_type_y WHERE _format_type_y.table_oid = typid % 100000000)
    WHEN typid >= 10000 THEN coalesce((SELECT any_value(_format_type_m.type_name) FROM {{DB}}._pgcdc.columns _format_type_m
            WHERE _format_type_m.type_oid = typid), '???')
    ELSE coalesce(
        (SELECT CASE
            WHEN typmod IS NULL OR typmod < 0 THEN _format_type_t.fmt
            WHEN _format_type_t.typname IN ('numeric', '_numeric') THEN
                replace(_format_type_t.fmt, 'numeric', 'numeric(' || ((typmod - 4) >> 16) || ',' || ((typmod - 4) & 65535) || ')')
            WHEN _format_type_t.typname IN ('varchar', 'bpchar', '_varchar', '_bpchar') THEN
                regexp_replace(_format_type_t.fmt, '^(character varying|character|bit varying|bit)', '\1(' || (typmod - 4) || ')')
            WHEN _format_type_t.typname IN ('bit', 'varbit', '_bit', '_varbit') THEN
                regexp_replace(_format_type_t.fmt, '^(bit varying|bit)', '\1(' || typmod || ')')
            WHEN _format_type_t.typname IN ('timestamp', 'timestamptz', 'time', 'timetz', '_timestamp', '_timestamptz', '_time', '_timetz') THEN
                regexp_replace(_format_type_t.fmt, '^(timestamp|time)', '\1(' || typmod || ')')
            WHEN _format_type_t.typname IN ('interval', '_interval') AND (typmod & 65535) <> 65535 THEN
                regexp_replace(_format_type_t.fmt, '^interval', 'interval(' || (typmod & 65535) || ')')
            ELSE _format_type_t.fmt END
         FROM {{C}}.pg.types _format_type_t WHERE _format_type_t.oid = typid),
        '???') END;

CREATE OR REPLACE VIEW {{C}}.pg.pg_attribute AS
    SELECT c.attrelid, c.attname, c.atttypid, CAST(-1 AS INTEGER) AS attstattarget, coalesce(t.typlen, -1) AS attlen,
        c.attnum, c.attndims, CAST(-1 AS INTEGER) AS attcacheoff, c.atttypmod, coalesce(t.typbyval, false) AS attbyval,
        coalesce(t.typalign, 'i') AS attalign, coalesce(t.typstorage, 'x') AS attstorage,
        '' AS attcompression, c.attnotnull, c.column_default IS NOT NULL AS atthasdef, false AS atthasmissing,
        '' AS attidentity, '' AS attgenerated, false AS attisdropped, true AS attislocal, CAST(0 AS INTEGER) AS attinhcount,
        coalesce(t.typcollation, 0) AS attcollation,
        CAST(NULL AS VARCHAR[]) AS attacl, CAST(NULL AS VARCHAR[]) AS attoptions, CAST(NULL AS VARCHAR[]) AS attfdwoptions,
        CAST(NULL AS VARCHAR) AS attmissingval
    FROM {{C}}.pg.relcolumns c LEFT JOIN {{C}}.pg.types t ON t.oid = c.atttypid
    UNION ALL
    SELECT 1000000000 + c.attrelid, c.attname, c.atttypid, -1, -1, CAST(c.key_position AS SMALLINT), c.attndims, -1, c.atttypmod,
        false, 'i', 'p', '', false, false, false, '', '', false, true, 0, 0, NULL, NULL, NULL, NULL
    FROM {{C}}.pg.relcolumns c WHERE c.key_position > 0;

CREATE OR REPLACE VIEW {{C}}.pg.pg_attrdef AS
    SELECT CAST(attrelid * 1000 + attnum AS BIGINT) AS oid, attrelid AS adrelid, attnum AS adnum, column_default AS adbin
    FROM {{C}}.pg.relcolumns WHERE column_default IS NOT NULL;

CREATE OR REPLACE VIEW {{C}}.pg.pg_index AS
    SELECT 1000000000 + k.attrelid AS indexrelid, k.attrelid AS indrelid,
        k.nkeys AS indnatts, k.nkeys AS indnkeyatts,
        true AS indisunique, false AS indnullsnotdistinct, true AS indisprimary, false AS indisexclusion, true AS indimmediate,
        false AS indisclustered, true AS indisvalid, false AS indcheckxmin, true AS indisready, true AS indislive, false AS indisreplident,
        k.keys AS indkey,
        CAST([] AS BIGINT[]) AS indcollation, CAST([] AS BIGINT[]) AS indclass, CAST([] AS SMALLINT[]) AS indoption,
        CAST(NULL AS VARCHAR) AS indexprs, CAST(NULL AS VARCHAR) AS indpred
    FROM {{C}}.pg.keyed_tables k;

CREATE OR REPLACE VIEW {{C}}.pg.pg_constraint AS
    SELECT 1100000000 + k.attrelid AS oid, k.table_name || '_pkey' AS conname, n.oid AS connamespace, 'p' AS contype,
        false AS condeferrable, false AS condeferred, true AS convalidated, k.attrelid AS conrelid, CAST(0 AS BIGINT) AS contypid,
        1000000000 + k.attrelid AS conindid, CAST(0 AS BIGINT) AS conparentid, CAST(0 AS BIGINT) AS confrelid,
        ' ' AS confupdtype, ' ' AS confdeltype, ' ' AS confmatchtype, true AS conislocal, CAST(0 AS INTEGER) AS coninhcount,
        true AS connoinherit,
        k.keys AS conkey,
        CAST(NULL AS SMALLINT[]) AS confkey, CAST(NULL AS BIGINT[]) AS conpfeqop, CAST(NULL AS BIGINT[]) AS conppeqop,
        CAST(NULL AS BIGINT[]) AS conffeqop, CAST(NULL AS SMALLINT[]) AS confdelsetcols, CAST(NULL AS BIGINT[]) AS conexclop,
        CAST(NULL AS VARCHAR) AS conbin,
        'PRIMARY KEY (' || k.key_list || ')' AS condef,
        'CREATE UNIQUE INDEX ' || {{C}}.pg.quote_ident(k.table_name || '_pkey') || ' ON ' || {{C}}.pg.quote_ident(k.schema_name) || '.'
            || {{C}}.pg.quote_ident(k.table_name) || ' USING btree (' || k.key_list || ')' AS indexdef
    FROM {{C}}.pg.keyed_tables k JOIN {{C}}.pg.pg_namespace n ON n.nspname = k.schema_name;

CREATE OR REPLACE VIEW {{C}}.pg.pg_description AS
    SELECT t.table_oid AS objoid, CAST(1259 AS BIGINT) AS classoid, CAST(0 AS INTEGER) AS objsubid, t.comment AS description
    FROM system.main.duckdb_tables() t
    WHERE t.database_name = '{{DBNAME}}' AND NOT {{C}}.pg.hidden_schema(t.schema_name) AND t.comment IS NOT NULL
    UNION ALL
    -- The source's column comments. (The DuckDB columns' own comments are
    -- pgcdc's: they record source attnums.)
    SELECT c.attrelid, 1259, c.attnum, c.comment FROM {{C}}.pg.relcolumns c WHERE c.comment IS NOT NULL
    UNION ALL
    SELECT f.oid, 1255, 0, f.description FROM {{C}}.pg.functions f
    UNION ALL
    SELECT n.oid, 2615, 0, 'standard public schema' FROM {{C}}.pg.pg_namespace n WHERE n.nspname = 'public'
    UNION ALL
    SELECT 9000, 2615, 0, 'pgcdc''s replication functions';

CREATE OR REPLACE VIEW {{C}}.pg.pg_proc AS
    SELECT f.oid, f.proname, CAST(9000 AS BIGINT) AS pronamespace, CAST(10 AS BIGINT) AS proowner, CAST(13 AS BIGINT) AS prolang,
        CAST(1000 AS FLOAT) AS procost, CAST(1000 AS FLOAT) AS prorows, CAST(0 AS BIGINT) AS provariadic, '-' AS prosupport,
        'f' AS prokind, false AS prosecdef, false AS proleakproof, false AS proisstrict, true AS proretset, 'v' AS provolatile,
        'u' AS proparallel, CAST(f.pronargs AS SMALLINT) AS pronargs, CAST(f.pronargdefaults AS SMALLINT) AS pronargdefaults,
        CAST(2249 AS BIGINT) AS prorettype, f.proargtypes, f.proallargtypes, f.proargmodes, f.proargnames,
        CAST(NULL AS VARCHAR) AS proargdefaults, CAST(NULL AS BIGINT[]) AS protrftypes, f.prosrc, CAST(NULL AS VARCHAR) AS probin,
        CAST(NULL AS VARCHAR) AS prosqlbody, CAST(NULL AS VARCHAR[]) AS proconfig, CAST(NULL AS VARCHAR[]) AS proacl,
        f.arguments, f.identity_arguments, f.result
    FROM {{C}}.pg.functions f
    UNION ALL
    SELECT p.oid, p.proname, 11, 10, 12, 1, 0, 0, '-', p.prokind, false, false, true, false, 'i', 's', CAST(p.pronargs AS SMALLINT), 0,
        p.prorettype, CAST(NULL AS BIGINT[]), NULL, NULL, NULL, NULL, NULL, p.proname, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {{C}}.pg.procs p;

CREATE OR REPLACE VIEW {{C}}.pg.pg_am AS
    SELECT CAST(2 AS BIGINT) AS oid, 'heap' AS amname, 'heap_tableam_handler' AS amhandler, 't' AS amtype
    UNION ALL SELECT 403, 'btree', 'bthandler', 'i';

CREATE OR REPLACE VIEW {{C}}.pg.pg_roles AS
    SELECT 'pgcdc' AS rolname, true AS rolsuper, true AS rolinherit, true AS rolcreaterole, true AS rolcreatedb, true AS rolcanlogin,
        false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword, CAST(NULL AS TIMESTAMPTZ) AS rolvaliduntil,
        false AS rolbypassrls, CAST(NULL AS VARCHAR[]) AS rolconfig, CAST(10 AS BIGINT) AS oid;
CREATE OR REPLACE VIEW {{C}}.pg.pg_authid AS SELECT * EXCLUDE (rolpassword), CAST(NULL AS VARCHAR) AS rolpassword FROM {{C}}.pg.pg_roles;
CREATE OR REPLACE VIEW {{C}}.pg.pg_user AS
    SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS usecreatedb, rolsuper AS usesuper, rolreplication AS userepl,
        rolbypassrls AS usebypassrls, rolpassword AS passwd, rolvaliduntil AS valuntil, rolconfig AS useconfig
    FROM {{C}}.pg.pg_roles;
CREATE OR REPLACE VIEW {{C}}.pg.pg_auth_members AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS roleid, CAST(0 AS BIGINT) AS member, CAST(0 AS BIGINT) AS grantor,
        false AS admin_option, false AS inherit_option, false AS set_option WHERE false;

CREATE OR REPLACE VIEW {{C}}.pg.pg_database AS
    SELECT CAST(16384 AS BIGINT) AS oid, '{{DATNAME}}' AS datname, CAST(10 AS BIGINT) AS datdba, 6 AS encoding, 'c' AS datlocprovider,
        false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, CAST(0 AS BIGINT) AS datfrozenxid, CAST(0 AS BIGINT) AS datminmxid,
        CAST(1663 AS BIGINT) AS dattablespace, 'C' AS datcollate, 'C' AS datctype, CAST(NULL AS VARCHAR) AS daticulocale,
        CAST(NULL AS VARCHAR) AS datcollversion, CAST(NULL AS VARCHAR[]) AS datacl;

CREATE OR REPLACE VIEW {{C}}.pg.pg_tablespace AS
    SELECT CAST(1663 AS BIGINT) AS oid, 'pg_default' AS spcname, CAST(10 AS BIGINT) AS spcowner, CAST(NULL AS VARCHAR[]) AS spcacl,
        CAST(NULL AS VARCHAR[]) AS spcoptions;

CREATE OR REPLACE VIEW {{C}}.pg.pg_collation AS
    SELECT CAST(100 AS BIGINT) AS oid, 'default' AS collname, CAST(11 AS BIGINT) AS collnamespace, CAST(10 AS BIGINT) AS collowner,
        'd' AS collprovider, true AS collisdeterministic, -1 AS collencoding, CAST(NULL AS VARCHAR) AS collcollate,
        CAST(NULL AS VARCHAR) AS collctype, CAST(NULL AS VARCHAR) AS colliculocale, CAST(NULL AS VARCHAR) AS collversion
    UNION ALL SELECT 950, 'C', 11, 10, 'c', true, -1, 'C', 'C', NULL, NULL;

CREATE OR REPLACE VIEW {{C}}.pg.pg_enum AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS enumtypid, CAST(0 AS FLOAT) AS enumsortorder, '' AS enumlabel WHERE false;

CREATE OR REPLACE VIEW {{C}}.pg.pg_tables AS
    SELECT n.nspname AS schemaname, c.relname AS tablename, 'pgcdc' AS tableowner, CAST(NULL AS VARCHAR) AS tablespace,
        c.relhasindex AS hasindexes, false AS hasrules, false AS hastriggers, false AS rowsecurity
    FROM {{C}}.pg.pg_class c JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r';

CREATE OR REPLACE VIEW {{C}}.pg.pg_views AS
    SELECT v.schema_name AS schemaname, v.view_name AS viewname, 'pgcdc' AS viewowner, v.sql AS definition
    FROM system.main.duckdb_views() v WHERE v.database_name = '{{DBNAME}}' AND NOT v.internal AND NOT {{C}}.pg.hidden_schema(v.schema_name);

CREATE OR REPLACE VIEW {{C}}.pg.pg_matviews AS
    SELECT '' AS schemaname, '' AS matviewname, '' AS matviewowner, CAST(NULL AS VARCHAR) AS tablespace, false AS hasindexes,
        false AS ispopulated, '' AS definition WHERE false;

CREATE OR REPLACE VIEW {{C}}.pg.pg_indexes AS
    SELECT n.nspname AS schemaname, t.relname AS tablename, i.relname AS indexname, CAST(NULL AS VARCHAR) AS tablespace,
        {{C}}.pg.pg_get_indexdef(i.oid) AS indexdef
    FROM {{C}}.pg.pg_index x JOIN {{C}}.pg.pg_class i ON i.oid = x.indexrelid JOIN {{C}}.pg.pg_class t ON t.oid = x.indrelid
    JOIN {{C}}.pg.pg_namespace n ON n.oid = t.relnamespace;

CREATE OR REPLACE VIEW {{C}}.pg.pg_settings AS
    SELECT name, setting, CAST(NULL AS VARCHAR) AS unit, 'Preset Options' AS category, '' AS short_desc, CAST(NULL AS VARCHAR) AS extra_desc,
        'internal' AS context, vartype, 'default' AS source, CAST(NULL AS VARCHAR) AS min_val, CAST(NULL AS VARCHAR) AS max_val,
        CAST(NULL AS VARCHAR[]) AS enumvals, setting AS boot_val, setting AS reset_val, CAST(NULL AS VARCHAR) AS sourcefile,
        CAST(NULL AS INTEGER) AS sourceline, false AS pending_restart
    FROM (VALUES ('max_index_keys', '32', 'integer'), ('max_identifier_length', '63', 'integer'), ('block_size', '8192', 'integer'),
        ('server_version_num', '160000', 'integer'), ('server_version', '16.0', 'string'), ('server_encoding', 'UTF8', 'string'),
        ('standard_conforming_strings', 'on', 'bool'), ('integer_datetimes', 'on', 'bool'), ('max_connections', '100', 'integer'),
        ('default_transaction_read_only', 'off', 'bool'), ('lc_collate', 'C', 'string'), ('lc_ctype', 'C', 'string')) v(name, setting, vartype);

CREATE OR REPLACE VIEW {{C}}.pg.pg_stat_user_tables AS
    SELECT c.oid AS relid, n.nspname AS schemaname, c.relname, CAST(c.reltuples AS BIGINT) AS n_live_tup, CAST(0 AS BIGINT) AS n_dead_tup,
        CAST(0 AS BIGINT) AS seq_scan, CAST(0 AS BIGINT) AS idx_scan
    FROM {{C}}.pg.pg_class c JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relnamespace <> 11;

-- Catalogs of features the replica does not have: empty, with their columns.
CREATE OR REPLACE VIEW {{C}}.pg.pg_inherits AS
    SELECT CAST(0 AS BIGINT) AS inhrelid, CAST(0 AS BIGINT) AS inhparent, 0 AS inhseqno, false AS inhdetachpending WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_trigger AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS tgrelid, CAST(0 AS BIGINT) AS tgparentid, '' AS tgname, CAST(0 AS BIGINT) AS tgfoid,
        0 AS tgtype, '' AS tgenabled, false AS tgisinternal, CAST(0 AS BIGINT) AS tgconstrrelid, CAST(0 AS BIGINT) AS tgconstrindid,
        CAST(0 AS BIGINT) AS tgconstraint, false AS tgdeferrable, false AS tginitdeferred, 0 AS tgnargs, CAST(NULL AS SMALLINT[]) AS tgattr,
        CAST(NULL AS VARCHAR) AS tgargs, CAST(NULL AS VARCHAR) AS tgqual, '' AS tgoldtable, '' AS tgnewtable WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_rewrite AS
    SELECT CAST(0 AS BIGINT) AS oid, '' AS rulename, CAST(0 AS BIGINT) AS ev_class, '' AS ev_type, '' AS ev_enabled, false AS is_instead,
        CAST(NULL AS VARCHAR) AS ev_qual, CAST(NULL AS VARCHAR) AS ev_action WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_policy AS
    SELECT CAST(0 AS BIGINT) AS oid, '' AS polname, CAST(0 AS BIGINT) AS polrelid, '' AS polcmd, false AS polpermissive,
        CAST(NULL AS BIGINT[]) AS polroles, CAST(NULL AS VARCHAR) AS polqual, CAST(NULL AS VARCHAR) AS polwithcheck WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_statistic_ext AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS stxrelid, '' AS stxname, CAST(0 AS BIGINT) AS stxnamespace,
        CAST(0 AS BIGINT) AS stxowner, -1 AS stxstattarget, CAST(NULL AS SMALLINT[]) AS stxkeys, CAST(NULL AS VARCHAR[]) AS stxkind,
        CAST(NULL AS VARCHAR) AS stxexprs WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_publication AS
    SELECT CAST(0 AS BIGINT) AS oid, '' AS pubname, CAST(0 AS BIGINT) AS pubowner, false AS puballtables, false AS pubinsert,
        false AS pubupdate, false AS pubdelete, false AS pubtruncate, false AS pubviaroot WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_publication_rel AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS prpubid, CAST(0 AS BIGINT) AS prrelid, CAST(NULL AS VARCHAR) AS prqual,
        CAST(NULL AS SMALLINT[]) AS prattrs WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_publication_namespace AS
    SELECT CAST(0 AS BIGINT) AS oid, CAST(0 AS BIGINT) AS pnpubid, CAST(0 AS BIGINT) AS pnnspid WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_foreign_table AS
    SELECT CAST(0 AS BIGINT) AS ftrelid, CAST(0 AS BIGINT) AS ftserver, CAST(NULL AS VARCHAR[]) AS ftoptions WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_partitioned_table AS
    SELECT CAST(0 AS BIGINT) AS partrelid, '' AS partstrat, CAST(0 AS SMALLINT) AS partnatts, CAST(0 AS BIGINT) AS partdefid,
        CAST(NULL AS SMALLINT[]) AS partattrs WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_extension AS
    SELECT CAST(13500 AS BIGINT) AS oid, 'plpgsql' AS extname, CAST(10 AS BIGINT) AS extowner, CAST(11 AS BIGINT) AS extnamespace,
        false AS extrelocatable, '1.0' AS extversion, CAST(NULL AS BIGINT[]) AS extconfig, CAST(NULL AS VARCHAR[]) AS extcondition;
CREATE OR REPLACE VIEW {{C}}.pg.pg_language AS
    SELECT CAST(12 AS BIGINT) AS oid, 'internal' AS lanname, CAST(10 AS BIGINT) AS lanowner, false AS lanispl, false AS lanpltrusted
    UNION ALL SELECT 13, 'c', 10, false, false UNION ALL SELECT 14, 'sql', 10, false, true;
CREATE OR REPLACE VIEW {{C}}.pg.pg_sequence AS
    SELECT CAST(0 AS BIGINT) AS seqrelid, CAST(0 AS BIGINT) AS seqtypid, CAST(0 AS BIGINT) AS seqstart, CAST(0 AS BIGINT) AS seqincrement,
        CAST(0 AS BIGINT) AS seqmax, CAST(0 AS BIGINT) AS seqmin, CAST(0 AS BIGINT) AS seqcache, false AS seqcycle WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_depend AS
    SELECT CAST(0 AS BIGINT) AS classid, CAST(0 AS BIGINT) AS objid, 0 AS objsubid, CAST(0 AS BIGINT) AS refclassid,
        CAST(0 AS BIGINT) AS refobjid, 0 AS refobjsubid, '' AS deptype WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_range AS
    SELECT CAST(rngtypid AS BIGINT) AS rngtypid, CAST(rngsubtype AS BIGINT) AS rngsubtype, CAST(rngmultitypid AS BIGINT) AS rngmultitypid
    FROM (VALUES (3904, 23, 4451), (3906, 1700, 4532), (3908, 1114, 4533), (3910, 1184, 4534), (3912, 1082, 4535), (3926, 20, 4536))
        r(rngtypid, rngsubtype, rngmultitypid);
CREATE OR REPLACE VIEW {{C}}.pg.pg_event_trigger AS
    SELECT CAST(0 AS BIGINT) AS oid, '' AS evtname, '' AS evtevent WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_opclass AS
    SELECT CAST(0 AS BIGINT) AS oid, '' AS opcname, CAST(0 AS BIGINT) AS opcnamespace, false AS opcdefault WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_shdescription AS
    SELECT CAST(0 AS BIGINT) AS objoid, CAST(0 AS BIGINT) AS classoid, '' AS description WHERE false;
CREATE OR REPLACE VIEW {{C}}.pg.pg_stat_activity AS
    SELECT CAST(16384 AS BIGINT) AS datid, '{{DATNAME}}' AS datname, 0 AS pid, CAST(10 AS BIGINT) AS usesysid, 'pgcdc' AS usename,
        '' AS application_name, CAST(NULL AS VARCHAR) AS client_addr, 'active' AS state, '' AS query WHERE false;

-- Catalog functions.
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_userbyid(id) AS CASE WHEN id = 10 THEN 'pgcdc' ELSE 'unknown (OID=' || id || ')' END;
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_expr(expr, relid) AS expr, (expr, relid, pretty) AS expr;
CREATE OR REPLACE MACRO {{C}}.pg.pg_table_is_visible(relid) AS
    (SELECT list_contains(system.main.current_schemas(true), _pg_table_is_visible_n.nspname) OR _pg_table_is_visible_n.nspname = 'pg_catalog'
     FROM {{C}}.pg.pg_class _pg_table_is_visible_c JOIN {{C}}.pg.pg_namespace _pg_table_is_visible_n ON _pg_table_is_visible_n.oid = _pg_table_is_visible_c.relnamespace WHERE _pg_table_is_visible_c.oid = relid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_type_is_visible(typid) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.pg_function_is_visible(fid) AS
    (SELECT list_contains(system.main.current_schemas(true), 'pgcdc') FROM {{C}}.pg.functions _pg_function_is_visible_f WHERE _pg_function_is_visible_f.oid = fid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_function_result(fid) AS (SELECT _pg_get_function_result_f.result FROM {{C}}.pg.functions _pg_get_function_result_f WHERE _pg_get_function_result_f.oid = fid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_function_arguments(fid) AS (SELECT _pg_get_function_arguments_f.arguments FROM {{C}}.pg.functions _pg_get_function_arguments_f WHERE _pg_get_function_arguments_f.oid = fid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_function_identity_arguments(fid) AS
    (SELECT _pg_get_function_identity_arguments_f.identity_arguments FROM {{C}}.pg.functions _pg_get_function_identity_arguments_f WHERE _pg_get_function_identity_arguments_f.oid = fid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_constraintdef(cid) AS (SELECT any_value(_pg_get_constraintdef_c.condef) FROM {{C}}.pg.pg_constraint _pg_get_constraintdef_c WHERE _pg_get_constraintdef_c.oid = cid), (cid, pretty) AS (SELECT any_value(_pg_get_constraintdef_c.condef) FROM {{C}}.pg.pg_constraint _pg_get_constraintdef_c WHERE _pg_get_constraintdef_c.oid = cid);
CREATE OR REPLACE MACRO {{C}}.pg.indexdef(iid) AS
    (SELECT any_value(_indexdef_k.indexdef) FROM {{C}}.pg.pg_constraint _indexdef_k WHERE _indexdef_k.conindid = iid);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_indexdef(iid) AS {{C}}.pg.indexdef(iid), (iid, col, pretty) AS
    CASE WHEN col = 0 THEN {{C}}.pg.indexdef(iid)
    ELSE (SELECT any_value({{C}}.pg.quote_ident(_pg_get_indexdef_c.attname)) FROM {{C}}.pg.relcolumns _pg_get_indexdef_c
          WHERE 1000000000 + _pg_get_indexdef_c.attrelid = iid AND _pg_get_indexdef_c.key_position = col) END;
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_viewdef(vid) AS (SELECT _pg_get_viewdef_v.sql FROM system.main.duckdb_views() _pg_get_viewdef_v WHERE _pg_get_viewdef_v.view_oid = vid), (vid, pretty) AS (SELECT _pg_get_viewdef_v.sql FROM system.main.duckdb_views() _pg_get_viewdef_v WHERE _pg_get_viewdef_v.view_oid = vid);
CREATE OR REPLACE MACRO {{C}}.pg.obj_description(id) AS (SELECT any_value(_obj_description_d.description) FROM {{C}}.pg.pg_description _obj_description_d WHERE _obj_description_d.objoid = id AND _obj_description_d.objsubid = 0),
    (id, cls) AS
    (SELECT any_value(_obj_description_d.description) FROM {{C}}.pg.pg_description _obj_description_d WHERE _obj_description_d.objoid = id AND _obj_description_d.objsubid = 0
        AND _obj_description_d.classoid = CASE cls WHEN 'pg_class' THEN 1259 WHEN 'pg_proc' THEN 1255 WHEN 'pg_namespace' THEN 2615 ELSE 0 END);
CREATE OR REPLACE MACRO {{C}}.pg.col_description(id, num) AS
    (SELECT any_value(_col_description_d.description) FROM {{C}}.pg.pg_description _col_description_d WHERE _col_description_d.objoid = id AND _col_description_d.objsubid = num AND _col_description_d.classoid = 1259);
CREATE OR REPLACE MACRO {{C}}.pg.shobj_description(id, cls) AS CAST(NULL AS VARCHAR);
CREATE OR REPLACE MACRO {{C}}.pg.pg_total_relation_size(id) AS CAST(0 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.pg_relation_size(id) AS CAST(0 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.pg_table_size(id) AS CAST(0 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.pg_indexes_size(id) AS CAST(0 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.pg_database_size(id) AS CAST(0 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.pg_size_pretty(b) AS CASE WHEN b < 10240 THEN b || ' bytes' ELSE format_bytes(b) END;
CREATE OR REPLACE MACRO {{C}}.pg.array_lower(arr, dim) AS CASE WHEN dim = 1 AND len(arr) > 0 THEN 1 END;
CREATE OR REPLACE MACRO {{C}}.pg.array_upper(arr, dim) AS CASE WHEN dim = 1 AND len(arr) > 0 THEN len(arr) END;
CREATE OR REPLACE MACRO {{C}}.pg.array_length(arr, dim) AS CASE WHEN dim = 1 AND len(arr) > 0 THEN len(arr) END;
CREATE OR REPLACE MACRO {{C}}.pg._pg_expandarray(arr) AS
    unnest(list_transform(generate_series(1, len(arr)), i -> {'x': arr[i], 'n': i}));
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_keywords() AS TABLE
    SELECT word, catcode, barelabel, catdesc, baredesc FROM {{C}}.pg.keywords ORDER BY word;
-- DuckDB's connection id: one per session, stable for its life (not the
-- process ID of the session's BackendKeyData).
CREATE OR REPLACE MACRO {{C}}.pg.pg_backend_pid() AS CAST(system.main.current_connection_id() % 2147483647 AS INTEGER);
CREATE OR REPLACE MACRO {{C}}.pg.pg_encoding_to_char(e) AS 'UTF8';
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_serial_sequence(t, c) AS CAST(NULL AS VARCHAR);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_partkeydef(id) AS CAST(NULL AS VARCHAR);
CREATE OR REPLACE MACRO {{C}}.pg.pg_get_statisticsobjdef_columns(id) AS CAST(NULL AS VARCHAR);
CREATE OR REPLACE MACRO {{C}}.pg.pg_is_in_recovery() AS false;
CREATE OR REPLACE MACRO {{C}}.pg.btrim(s) AS trim(s), (s, chars) AS trim(s, chars);
CREATE OR REPLACE MACRO {{C}}.pg.pg_relation_is_publishable(id) AS false;
CREATE OR REPLACE MACRO {{C}}.pg.txid_current() AS system.main.txid_current();
CREATE OR REPLACE MACRO {{C}}.pg.pg_postmaster_start_time() AS CAST('{{STARTED}}' AS TIMESTAMPTZ);
CREATE OR REPLACE MACRO {{C}}.pg.current_database() AS '{{DATNAME}}';
CREATE OR REPLACE MACRO {{C}}.pg.has_table_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_schema_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_database_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_column_privilege(a, b, c) AS true, (a, b, c, d) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_function_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_sequence_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.has_any_column_privilege(a, b) AS true, (a, b, c) AS true;
CREATE OR REPLACE MACRO {{C}}.pg.pg_has_role(a, b) AS true, (a, b, c) AS true;

-- The reg* types: a name becomes an OID (NULL when nothing has the name,
-- where Postgres fails), and an OID cast to text becomes a name.
CREATE OR REPLACE MACRO {{C}}.pg.regclass_in(s) AS
    CASE WHEN regexp_full_match(CAST(s AS VARCHAR), '[0-9]+') THEN TRY_CAST(s AS BIGINT) ELSE {{C}}.pg.regclass_name(CAST(s AS VARCHAR)) END;
CREATE OR REPLACE MACRO {{C}}.pg.regclass_name(s) AS
    (SELECT any_value(_regclass_name_c.oid) FROM {{C}}.pg.pg_class _regclass_name_c JOIN {{C}}.pg.pg_namespace _regclass_name_n ON _regclass_name_n.oid = _regclass_name_c.relnamespace
     WHERE CASE WHEN len({{C}}.pg.parse_ident(s)) = 2 THEN _regclass_name_n.nspname = {{C}}.pg.parse_ident(s)[1] AND _regclass_name_c.relname = {{C}}.pg.parse_ident(s)[2]
        ELSE _regclass_name_c.relname = {{C}}.pg.parse_ident(s)[-1] AND {{C}}.pg.pg_table_is_visible(_regclass_name_c.oid) END);
CREATE OR REPLACE MACRO {{C}}.pg.regclass_out(id) AS
    (SELECT CASE WHEN {{C}}.pg.pg_table_is_visible(_regclass_out_c.oid) THEN '' ELSE {{C}}.pg.quote_ident(_regclass_out_n.nspname) || '.' END || {{C}}.pg.quote_ident(_regclass_out_c.relname)
     FROM {{C}}.pg.pg_class _regclass_out_c JOIN {{C}}.pg.pg_namespace _regclass_out_n ON _regclass_out_n.oid = _regclass_out_c.relnamespace WHERE _regclass_out_c.oid = id);
CREATE OR REPLACE MACRO {{C}}.pg.regtype_in(s) AS
    CASE WHEN regexp_full_match(CAST(s AS VARCHAR), '[0-9]+') THEN TRY_CAST(s AS BIGINT) ELSE {{C}}.pg.regtype_name(CAST(s AS VARCHAR)) END;
CREATE OR REPLACE MACRO {{C}}.pg.regtype_name(s) AS
    (SELECT any_value(_regtype_name_t.oid) FROM {{C}}.pg.pg_type _regtype_name_t WHERE _regtype_name_t.typname = lower(s) OR _regtype_name_t.oid IN (SELECT oid FROM {{C}}.pg.types WHERE fmt = lower(s)));
CREATE OR REPLACE MACRO {{C}}.pg.regtype_out(id) AS {{C}}.pg.format_type(id, NULL);
CREATE OR REPLACE MACRO {{C}}.pg.regnamespace_in(s) AS (SELECT any_value(_regnamespace_in_n.oid) FROM {{C}}.pg.pg_namespace _regnamespace_in_n WHERE _regnamespace_in_n.nspname = {{C}}.pg.parse_ident(s)[1]);
CREATE OR REPLACE MACRO {{C}}.pg.regnamespace_out(id) AS (SELECT {{C}}.pg.quote_ident(_regnamespace_out_n.nspname) FROM {{C}}.pg.pg_namespace _regnamespace_out_n WHERE _regnamespace_out_n.oid = id);
CREATE OR REPLACE MACRO {{C}}.pg.regproc_in(s) AS
    CASE WHEN regexp_full_match(CAST(s AS VARCHAR), '[0-9]+') THEN TRY_CAST(s AS BIGINT)
    ELSE (SELECT any_value(_regproc_in_p.oid) FROM {{C}}.pg.pg_proc _regproc_in_p
          WHERE _regproc_in_p.proname = {{C}}.pg.parse_ident(CAST(s AS VARCHAR))[-1]) END;
CREATE OR REPLACE MACRO {{C}}.pg.regproc_out(id) AS
    coalesce((SELECT any_value(_regproc_out_p.proname) FROM {{C}}.pg.pg_proc _regproc_out_p WHERE _regproc_out_p.oid = id), '-');
CREATE OR REPLACE MACRO {{C}}.pg.regrole_in(s) AS CAST(10 AS BIGINT);
CREATE OR REPLACE MACRO {{C}}.pg.regrole_out(id) AS {{C}}.pg.pg_get_userbyid(id);
CREATE OR REPLACE MACRO {{C}}.pg.to_regclass(s) AS {{C}}.pg.regclass_in(s);
CREATE OR REPLACE MACRO {{C}}.pg.to_regtype(s) AS {{C}}.pg.regtype_in(s);
CREATE OR REPLACE MACRO {{C}}.pg.to_regnamespace(s) AS {{C}}.pg.regnamespace_in(s);
CREATE OR REPLACE MACRO {{C}}.pg.to_regproc(s) AS {{C}}.pg.regproc_in(s);
-- information_schema.
CREATE OR REPLACE VIEW {{C}}.info.schemata AS
    SELECT '{{DATNAME}}' AS catalog_name, nspname AS schema_name, 'pgcdc' AS schema_owner, CAST(NULL AS VARCHAR) AS default_character_set_catalog,
        CAST(NULL AS VARCHAR) AS default_character_set_schema, CAST(NULL AS VARCHAR) AS default_character_set_name, CAST(NULL AS VARCHAR) AS sql_path
    FROM {{C}}.pg.pg_namespace;

CREATE OR REPLACE VIEW {{C}}.info.tables AS
    SELECT '{{DATNAME}}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name,
        CASE c.relkind WHEN 'r' THEN 'BASE TABLE' WHEN 'v' THEN 'VIEW' END AS table_type,
        CAST(NULL AS VARCHAR) AS self_referencing_column_name, CAST(NULL AS VARCHAR) AS reference_generation,
        CAST(NULL AS VARCHAR) AS user_defined_type_catalog, CAST(NULL AS VARCHAR) AS user_defined_type_schema, CAST(NULL AS VARCHAR) AS user_defined_type_name,
        CASE c.relkind WHEN 'r' THEN 'YES' ELSE 'NO' END AS is_insertable_into, 'NO' AS is_typed, CAST(NULL AS VARCHAR) AS commit_action
    FROM {{C}}.pg.pg_class c JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v');

CREATE OR REPLACE VIEW {{C}}.info.views AS
    SELECT '{{DATNAME}}' AS table_catalog, schemaname AS table_schema, viewname AS table_name, definition AS view_definition,
        'NONE' AS check_option, 'NO' AS is_updatable, 'NO' AS is_insertable_into, 'NO' AS is_trigger_updatable,
        'NO' AS is_trigger_deletable, 'NO' AS is_trigger_insertable_into
    FROM {{C}}.pg.pg_views;

CREATE OR REPLACE VIEW {{C}}.info.columns AS
    SELECT '{{DATNAME}}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, a.attname AS column_name,
        CAST(a.attnum AS INTEGER) AS ordinal_position, d.adbin AS column_default,
        CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable,
        CASE WHEN t.typcategory = 'A' THEN 'ARRAY' WHEN t.typtype = 'e' THEN 'USER-DEFINED'
            ELSE regexp_replace({{C}}.pg.format_type(a.atttypid, NULL), '\(.*$', '') END AS data_type,
        CASE WHEN a.atttypid IN (1043, 1042) AND a.atttypmod > 0 THEN a.atttypmod - 4 END AS character_maximum_length,
        CASE WHEN a.atttypid IN (1043, 1042, 25) THEN 1073741824 END AS character_octet_length,
        CASE a.atttypid WHEN 21 THEN 16 WHEN 23 THEN 32 WHEN 20 THEN 64 WHEN 700 THEN 24 WHEN 701 THEN 53
            WHEN 1700 THEN CASE WHEN a.atttypmod > 0 THEN (a.atttypmod - 4) >> 16 END END AS numeric_precision,
        CASE WHEN a.atttypid IN (21, 23, 20, 700, 701) THEN 2 WHEN a.atttypid = 1700 THEN 10 END AS numeric_precision_radix,
        CASE WHEN a.atttypid IN (21, 23, 20) THEN 0 WHEN a.atttypid = 1700 AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END AS numeric_scale,
        CASE WHEN a.atttypid = 1082 THEN 0 WHEN a.atttypid IN (1083, 1114, 1184, 1266, 1186) THEN CASE WHEN a.atttypmod >= 0 THEN a.atttypmod ELSE 6 END END AS datetime_precision,
        CAST(NULL AS VARCHAR) AS interval_type, CAST(NULL AS INTEGER) AS interval_precision,
        CAST(NULL AS VARCHAR) AS character_set_catalog, CAST(NULL AS VARCHAR) AS character_set_schema, CAST(NULL AS VARCHAR) AS character_set_name,
        CAST(NULL AS VARCHAR) AS collation_catalog, CAST(NULL AS VARCHAR) AS collation_schema, CAST(NULL AS VARCHAR) AS collation_name,
        CAST(NULL AS VARCHAR) AS domain_catalog, CAST(NULL AS VARCHAR) AS domain_schema, CAST(NULL AS VARCHAR) AS domain_name,
        '{{DATNAME}}' AS udt_catalog, CASE WHEN t.typnamespace = 11 THEN 'pg_catalog' ELSE (SELECT nspname FROM {{C}}.pg.pg_namespace WHERE oid = t.typnamespace) END AS udt_schema,
        t.typname AS udt_name,
        CAST(NULL AS VARCHAR) AS scope_catalog, CAST(NULL AS VARCHAR) AS scope_schema, CAST(NULL AS VARCHAR) AS scope_name,
        CAST(NULL AS INTEGER) AS maximum_cardinality, CAST(a.attnum AS VARCHAR) AS dtd_identifier, 'NO' AS is_self_referencing,
        'NO' AS is_identity, CAST(NULL AS VARCHAR) AS identity_generation, CAST(NULL AS VARCHAR) AS identity_start,
        CAST(NULL AS VARCHAR) AS identity_increment, CAST(NULL AS VARCHAR) AS identity_maximum, CAST(NULL AS VARCHAR) AS identity_minimum,
        CAST(NULL AS VARCHAR) AS identity_cycle, 'NEVER' AS is_generated, CAST(NULL AS VARCHAR) AS generation_expression,
        CASE WHEN c.relkind = 'r' THEN 'YES' ELSE 'NO' END AS is_updatable
    FROM {{C}}.pg.pg_attribute a JOIN {{C}}.pg.pg_class c ON c.oid = a.attrelid JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN {{C}}.pg.pg_type t ON t.oid = a.atttypid
    LEFT JOIN {{C}}.pg.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'v') AND a.attnum > 0;

CREATE OR REPLACE VIEW {{C}}.info.table_constraints AS
    SELECT '{{DATNAME}}' AS constraint_catalog, n.nspname AS constraint_schema, k.conname AS constraint_name,
        '{{DATNAME}}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, 'PRIMARY KEY' AS constraint_type,
        'NO' AS is_deferrable, 'NO' AS initially_deferred, 'YES' AS enforced, CAST(NULL AS VARCHAR) AS nulls_distinct
    FROM {{C}}.pg.pg_constraint k JOIN {{C}}.pg.pg_class c ON c.oid = k.conrelid JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace;

CREATE OR REPLACE VIEW {{C}}.info.key_column_usage AS
    SELECT '{{DATNAME}}' AS constraint_catalog, n.nspname AS constraint_schema, k.conname AS constraint_name,
        '{{DATNAME}}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, a.attname AS column_name,
        CAST(list_position(k.conkey, a.attnum) AS INTEGER) AS ordinal_position, CAST(NULL AS INTEGER) AS position_in_unique_constraint
    FROM {{C}}.pg.pg_constraint k JOIN {{C}}.pg.pg_class c ON c.oid = k.conrelid JOIN {{C}}.pg.pg_namespace n ON n.oid = c.relnamespace
    JOIN {{C}}.pg.pg_attribute a ON a.attrelid = k.conrelid AND list_contains(k.conkey, a.attnum);

CREATE OR REPLACE VIEW {{C}}.info.constraint_column_usage AS
    SELECT '{{DATNAME}}' AS table_catalog, table_schema, table_name, column_name, constraint_catalog, constraint_schema, constraint_name
    FROM {{C}}.info.key_column_usage;

CREATE OR REPLACE VIEW {{C}}.info.referential_constraints AS
    SELECT '' AS constraint_catalog, '' AS constraint_schema, '' AS constraint_name, '' AS unique_constraint_catalog,
        '' AS unique_constraint_schema, '' AS unique_constraint_name, '' AS match_option, '' AS update_rule, '' AS delete_rule WHERE false;

CREATE OR REPLACE VIEW {{C}}.info.routines AS
    SELECT '{{DATNAME}}' AS specific_catalog, 'pgcdc' AS specific_schema, f.proname || '_' || f.oid AS specific_name,
        '{{DATNAME}}' AS routine_catalog, 'pgcdc' AS routine_schema, f.proname AS routine_name, 'FUNCTION' AS routine_type,
        'record' AS data_type, 'pg_catalog' AS type_udt_schema, 'record' AS type_udt_name, 'EXTERNAL' AS routine_body,
        CAST(NULL AS VARCHAR) AS routine_definition, 'INTERNAL' AS external_language, 'GENERAL' AS parameter_style,
        'NO' AS is_deterministic, 'MODIFIES' AS sql_data_access, 'NO' AS is_null_call, 'NO' AS security_type
    FROM {{C}}.pg.functions f;

CREATE OR REPLACE VIEW {{C}}.info.parameters AS
    SELECT '{{DATNAME}}' AS specific_catalog, 'pgcdc' AS specific_schema, f.proname || '_' || f.oid AS specific_name,
        CAST(i AS INTEGER) AS ordinal_position, CASE f.proargmodes[i] WHEN 't' THEN 'OUT' ELSE 'IN' END AS parameter_mode,
        f.proargnames[i] AS parameter_name,
        regexp_replace({{C}}.pg.format_type(f.proallargtypes[i], NULL), '\[\]$', '') AS data_type
    FROM {{C}}.pg.functions f, generate_series(1, len(f.proallargtypes)) g(i);
