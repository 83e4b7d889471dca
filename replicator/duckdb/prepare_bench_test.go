package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
)

// psqlListTables is psql 16's \dt.
const psqlListTables = `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`

// BenchmarkPrepare is the cost of preparing (describing) a client
// statement in a DuckDB session: the Postgres parse and rewrites, and
// DuckDB's own prepare.
func BenchmarkPrepare(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), "replica.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	s, err := d.OpenSession(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ name, q string }{
		{"psql_dt", psqlListTables},
		{"select", "SELECT 7/2 AS half, count(*) FROM range(10) r(i) WHERE i > 1"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.Prepare(ctx, c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
