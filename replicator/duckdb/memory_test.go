package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
)

// TestMemoryLimitIsApplied: MemoryLimit sets DuckDB's memory_limit for the
// engine and every client session, and a memory_limit in the path wins.
func TestMemoryLimitIsApplied(t *testing.T) {
	d := openFile(t, duckdb.MemoryLimit(48<<20))
	if got := engineValue(t, d, "SELECT current_setting('memory_limit')"); got != "48.0 MiB" {
		t.Errorf("engine memory_limit = %s, want 48.0 MiB", got)
	}
	s := openSession(t, d)
	if got := mustRun(t, s, "SELECT current_setting('memory_limit')"); len(got) != 1 || got[0] != "48.0 MiB" {
		t.Errorf("client memory_limit = %v, want 48.0 MiB", got)
	}
	// A client cannot raise it: the configuration is locked.
	refused(t, s, "SET memory_limit = '10GB'", "42501")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "replica.duckdb") + "?memory_limit=100MiB"
	d2, err := duckdb.Open(ctx, path, duckdb.MemoryLimit(48<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if got := engineValue(t, d2, "SELECT current_setting('memory_limit')"); got != "100.0 MiB" {
		t.Errorf("memory_limit with ?memory_limit=100MiB in the path = %s, want 100.0 MiB", got)
	}

	mem, err := duckdb.Open(ctx, ":memory:", duckdb.MemoryLimit(40<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if got := engineValue(t, mem, "SELECT current_setting('memory_limit')"); got != "40.0 MiB" {
		t.Errorf("in-memory memory_limit = %s, want 40.0 MiB", got)
	}
}

// TestClientQueriesSpillUnderMemoryLimit: a client's sort, aggregate and
// join over more data than the memory limit spill to the temp directory
// next to the database file and succeed, with the database closed to
// clients' file access.
func TestClientQueriesSpillUnderMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and sorts about 100 MB")
	}
	d := openFile(t, duckdb.MemoryLimit(100<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 600,000 rows of about 200 bytes: about 120 MB. Each query below fails
	// under this limit when DuckDB has no temp directory to spill to.
	if _, err := d.DB().ExecContext(ctx, `CREATE TABLE big AS
		SELECT g AS id, g % 1000 AS k, repeat(md5(g::VARCHAR), 6) AS v FROM range(600000) t(g)`); err != nil {
		t.Fatal(err)
	}
	s := openSession(t, d)
	for _, c := range []struct{ q, want string }{
		// ORDER BY on a wide key, only the last row kept by the client.
		{"SELECT id FROM big ORDER BY v DESC, id OFFSET 599999", ""},
		{"SELECT count(*) FROM (SELECT v, count(*) FROM big GROUP BY v)", "600000"},
		{"SELECT count(*) FROM big a JOIN big b ON a.v = b.v", "600000"},
		{"SELECT count(DISTINCT v) FROM big", "600000"},
	} {
		got, _, err := run(s, c.q)
		if err != nil {
			t.Fatalf("%s under a 100 MiB memory_limit: %v (SQLSTATE %s)", c.q, err, sqlstate(err))
		}
		if len(got) != 1 || c.want != "" && got[0] != c.want {
			t.Errorf("%s = %v, want %s", c.q, got, c.want)
		}
	}
	// What cannot spill, one value larger than the limit, fails as
	// Postgres's out_of_memory: the limit is real.
	if _, _, err := run(s, "SELECT length(string_agg(v, '')) FROM big"); sqlstate(err) != "53200" {
		t.Errorf("a 120 MB value under a 100 MiB memory_limit: %v (SQLSTATE %q), want SQLSTATE 53200", err, sqlstate(err))
	}
}
