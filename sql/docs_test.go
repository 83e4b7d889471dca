package sql_test

import (
	"strings"
	"testing"
)

func TestDocs(t *testing.T) {
	c := mustCatalog(t)
	docs := c.Docs()
	for _, want := range []string{
		"# SQL functions\n",
		"## init_replication\n",
		"## replicate\n",
		"## replication_status\n",
		"## drop_replication\n",
		"pgcdc.replicate(\n    slot_name text,\n",
		"    target_batch_size integer DEFAULT 1000,\n",
		"    delete_mode text DEFAULT 'hard'\n) RETURNS TABLE (\n    table_name text,\n",
		"| `slot_name` | `text` | required |\n",
		"| `schema_name` | `text` | `'public'` |\n",
		"| `table_names` | `text[]` | `NULL` |\n",
		"| `persist_snapshots` | `boolean` | `false` |\n",
		"| `publish` | `text` | `NULL` |\n",
		"| `end_lsn` | `pg_lsn` |\n",
		"| `last_replicated_at` | `timestamptz` |\n",
		"| `tables` | `text[]` |\n",
		"the tables' current contents", // COMMENT text, '' unescaped
	} {
		if !strings.Contains(docs, want) {
			t.Errorf("Docs() lacks %q", want)
		}
	}
	// Every function's comment is in, in catalog order.
	last := -1
	for _, fn := range c.Functions {
		i := strings.Index(docs, strings.TrimSpace(fn.Comment))
		if i < 0 || i < last {
			t.Errorf("comment of %s missing or out of order", fn.Name)
		}
		last = i
	}
}
