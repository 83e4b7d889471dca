package sql_test

import (
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

// dbtQuery is a typical statement from a BI tool or dbt run: it passes
// through, and the pre-filter is all it should cost.
const dbtQuery = `/* {"app": "dbt", "dbt_version": "1.8.2", "profile_name": "shop", "target_name": "prod", "node_id": "model.shop.daily_orders"} */
create or replace table "analytics"."main"."daily_orders" as (
    select o.customer_id, date_trunc('day', o.created_at) as day,
           count(*) as orders, sum(o.total) as revenue
    from "analytics"."raw"."orders" o
    join "analytics"."raw"."customers" c on c.id = o.customer_id
    where o.status <> 'cancelled' and o.created_at >= now() - interval '90 days'
    group by 1, 2
)`

func BenchmarkClassifyPassthrough(b *testing.B) {
	c := mustCatalog(b)
	for _, bm := range []struct {
		name  string
		query string
	}{
		{"short", "SELECT 1"},
		{"dbt", dbtQuery},
		// Shares "replicat" with our names but none of them: the second,
		// exact pass of the pre-filter rejects it.
		{"near-miss", "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'logical'"},
		// Contains a name, so it pays for a parse and a tree walk.
		{"parsed", "SELECT * FROM audit_log WHERE message LIKE '%replicate%' ORDER BY ts DESC LIMIT 100"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.query)))
			for b.Loop() {
				call, err := c.Classify(bm.query)
				if call != nil || err != nil {
					b.Fatal(call, err)
				}
			}
		})
	}
}

func BenchmarkClassifyCall(b *testing.B) {
	c := mustCatalog(b)
	const query = `/* {"app": "dbt"} */ SELECT * FROM pgcdc.replicate('shop_slot', 'shop_pub', target_batch_size => 5000, include_columns => '{"orders": ["id", "total"]}')`
	b.Run("classify+bind", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call, err := c.Classify(query)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := call.Bind(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bind-params", func(b *testing.B) {
		call, err := c.Classify(`SELECT * FROM pgcdc.replicate($1, $2, target_batch_size => $3)`)
		if err != nil {
			b.Fatal(err)
		}
		params := []any{"shop_slot", "shop_pub", int32(5000)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := call.Bind(params); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var _ = sql.FormTable
