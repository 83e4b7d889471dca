package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestClientNode runs the client scenario with node-postgres
// (internal/clients/node/scenario.js), which also uses named statements,
// binary results and pipeline mode.
func TestClientNode(t *testing.T) { forEachClientDestination(t, clientNode) }

func clientNode(t *testing.T, d clientDestination) {
	node, err := exec.LookPath("node")
	if err != nil {
		requireClient(t, "no node: %v", err)
	}
	dir := filepath.Join(clientsDir(t), "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg", "package.json")); err != nil {
		requireClient(t, "node-postgres is not installed in %s (npm ci there): %v", dir, err)
	}
	ctx := testContext(t, 3*time.Minute)
	c := startClientSetup(ctx, t, d, "node")
	cmd := exec.CommandContext(ctx, node, "scenario.js")
	cmd.Dir = dir
	runScenario(ctx, t, c, cmd)
	c.verify(ctx, t)
}
