package main_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestClientPsycopg2 runs the client scenario with psycopg2 as dbt uses it:
// inside BEGIN ... COMMIT, behind a dbt query comment
// (internal/clients/python/scenario.py).
func TestClientPsycopg2(t *testing.T) { forEachClientDestination(t, clientPsycopg2) }

func clientPsycopg2(t *testing.T, d clientDestination) {
	python := findPsycopg2(t)
	ctx := testContext(t, 3*time.Minute)
	c := startClientSetup(ctx, t, d, "psycopg2")
	cmd := exec.CommandContext(ctx, python, filepath.Join(clientsDir(t), "python", "scenario.py"))
	runScenario(ctx, t, c, cmd)
	c.verify(ctx, t)
}

// findPsycopg2 returns a Python interpreter that can import psycopg2.
// Debian's python3-psycopg2 is installed for /usr/bin/python3, which need
// not be the python3 first on PATH.
func findPsycopg2(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import psycopg2").Run() == nil {
			return p
		}
	}
	requireClient(t, "no Python interpreter with psycopg2 (tried %v)", candidates)
	return ""
}
