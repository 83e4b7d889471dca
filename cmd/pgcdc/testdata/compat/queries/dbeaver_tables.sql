-- DBeaver's PostgreSQL plugin: the tables of a schema in the navigator.
-- Origin: dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java
-- (the table cache's query; its parameter, the schema's OID, is a subquery here). The outer SELECT
-- keeps the columns that do not carry OIDs or storage details.
SELECT relname, relkind, relpersistence, relhasindex, relispartition, description, partition_expr, partition_key FROM (
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'shop') AND c.relkind not in ('i','I','c')
) t ORDER BY relname
