package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// TestServeDuckDBMemoryLimit: pgcdc serve caps DuckDB's memory by default
// (DuckDB's own default is 80% of the machine's RAM), the flag and its
// variable change the cap, and a memory_limit in --destination wins.
func TestServeDuckDBMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		name  string
		extra []string
		env   []string
		want  string
	}{
		{"default", nil, nil, "1.0 GiB"},
		{"flag", []string{"--duckdb-memory-limit", "300MB"}, nil, "300.0 MiB"},
		{"variable", nil, []string{"PGCDC_DUCKDB_MEMORY_LIMIT=2GB"}, "2.0 GiB"},
		{"destination setting wins", []string{"--duckdb-memory-limit", "300MB", "--destination",
			"duckdb:" + filepath.Join(t.TempDir(), "limit.duckdb") + "?memory_limit=200MiB"}, nil, "200.0 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, time.Minute)
			srv := pgcdctest.Start(t, pgcdctest.Options{Source: source.DSN(""), Extra: c.extra, Env: c.env})
			conn := srv.Connect(ctx, t)
			var got string
			if err := conn.QueryRow(ctx, "SELECT current_setting('memory_limit')").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("memory_limit = %s, want %s", got, c.want)
			}
		})
	}
}

func TestServeHelpDocumentsDuckDBMemoryLimit(t *testing.T) {
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	for _, want := range []string{"--duckdb-memory-limit", "PGCDC_DUCKDB_MEMORY_LIMIT", `default "1GB"`, "memory_limit", ".tmp"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pgcdc serve --help does not mention %s:\n%s", want, out)
		}
	}
}
