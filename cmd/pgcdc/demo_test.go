package main_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// TestDemo runs `pgcdc demo` as a user does: it waits for the instructions,
// follows them with psql, sees orders arrive in the replica, presses Ctrl-C
// (SIGINT) and checks that the source cluster and the replica are gone.
func TestDemo(t *testing.T) {
	psqlPath, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed (.ci/run installs postgresql-client): ", err)
	}
	ctx := testContext(t, 3*time.Minute)
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, "demo", "--listen", listen, "--rate", "20")
	cmd.Env = append(os.Environ(), "PGCDC_PASSWORD=") // the demo trusts loopback clients
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var output strings.Builder
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("demo output:\n%s\nstderr:\n%s", output.String(), stderr.String())
		}
	}()
	readUntil := func(marker string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the demo's output ended before %q", marker)
				}
				output.WriteString(l + "\n")
				if strings.Contains(l, marker) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q in the demo's output", marker)
			}
		}
	}
	readUntil("Press Ctrl-C")
	text := output.String()
	replica := regexp.MustCompile(`replica\s+(\S+)\.duckdb`).FindStringSubmatch(text)
	sourcePort := regexp.MustCompile(`Postgres on 127\.0\.0\.1:(\d+)`).FindStringSubmatch(text)
	if replica == nil || sourcePort == nil || !strings.Contains(text, "psql -h 127.0.0.1 -p "+strconv.Itoa(port)) {
		t.Fatalf("the demo's instructions lack the replica, the source or the psql command:\n%s", text)
	}
	replicaDir := replica[1][:strings.LastIndex(replica[1], "/")]

	query := func(sql string) int {
		t.Helper()
		out, err := exec.CommandContext(ctx, psqlPath, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-X", "-A", "-t",
			"-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("psql printed %q", out)
		}
		return n
	}
	count := func() int { return query("SELECT count(*) FROM shop.orders") }
	first := count()
	if first < 1000 {
		t.Fatalf("the replica holds %d orders, want the 1000 of the snapshot and more", first)
	}
	deadline := time.Now().Add(20 * time.Second)
	for count() <= first {
		if time.Now().After(deadline) {
			t.Fatalf("no new orders arrived in the replica in 20s (still %d)", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every kind of change the workload makes arrives, new customers too.
	for query("SELECT count(*) FROM shop.customers") <= 50 {
		if time.Now().After(deadline) {
			t.Fatalf("no new customer arrived in the replica in 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := exec.CommandContext(ctx, psqlPath, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-X", "-A", "-t",
		"-c", "SELECT * FROM replicate('demo', 'demo_pub')").CombinedOutput()
	if err != nil {
		t.Fatalf("psql replicate(): %v\n%s", err, out)
	}

	// Ctrl-C.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for l := range lines {
			output.WriteString(l + "\n")
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the demo exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not exit within 60s of SIGINT")
	}
	text = output.String()
	// At --rate 20 the workload has added customers by now (every 40th
	// transaction); it must still have been running at Ctrl-C.
	if strings.Contains(text, "The demo workload stopped") {
		t.Errorf("the demo's workload failed:\n%s", text)
	}
	if !strings.Contains(text, "Removed the replica") || !strings.Contains(text, "Removed the source Postgres") {
		t.Fatalf("the demo did not report its cleanup:\n%s", text)
	}
	if _, err := os.Stat(replicaDir); !os.IsNotExist(err) {
		t.Fatalf("the replica's directory %s is still there (%v)", replicaDir, err)
	}
	cluster := regexp.MustCompile(`Removed the source Postgres \((\S+)\)`).FindStringSubmatch(text)
	if cluster == nil {
		t.Fatal("no cluster directory in the cleanup report")
	}
	if _, err := os.Stat(cluster[1]); !os.IsNotExist(err) {
		t.Fatalf("the source cluster's directory %s is still there (%v)", cluster[1], err)
	}
	for _, addr := range []string{"127.0.0.1:" + sourcePort[1], listen} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after the demo ended", addr)
		}
	}
}
