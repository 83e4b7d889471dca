package main_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// TestShutdownDuringReplicate sends SIGTERM while a long replicate() runs:
// pgcdc stops accepting, ends idle sessions at once, gives the call the
// grace period and then cancels it, and exits 0. The destination stays
// consistent: a new pgcdc on the same DuckDB file and slot replicates to
// equality.
func TestShutdownDuringReplicate(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, clientSchema)
	const grace = 2 * time.Second
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn, Extra: []string{"--shutdown-grace", grace.String()}})
	rep := srv.Connect(ctx, t)
	rowsOf(ctx, t, rep, `SELECT * FROM init_replication('down', 'down_pub', schema_name => 'shop', persist_snapshots => true)`)
	mustExec(ctx, t, src, `UPDATE shop.orders SET note = 'before shutdown' WHERE id = 1`)
	callReplicate(ctx, t, rep, `SELECT * FROM replicate('down', 'down_pub')`)
	// Enough that replicate() with tiny batches outlasts the grace period.
	const rows = 1500000
	mustExec(ctx, t, src, fmt.Sprintf("INSERT INTO shop.big SELECT g, g FROM generate_series(1, %d) g", rows))
	mustExec(ctx, t, src, `UPDATE shop.orders SET note = 'after the big insert' WHERE id = 3`)

	idle := srv.Connect(ctx, t)
	done := make(chan error, 1)
	go func() {
		_, err := rep.Exec(ctx, `SELECT * FROM replicate('down', 'down_pub', target_batch_size => 10)`)
		done <- err
	}()
	time.Sleep(cancelAfter) // well into a call that takes several seconds

	start := time.Now()
	if err := srv.Signal(syscall.SIGTERM, grace+10*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("pgcdc exited %v after SIGTERM with code %d", took, srv.ExitCode())
	if code := srv.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if took < grace-200*time.Millisecond || took > grace+5*time.Second {
		t.Fatalf("pgcdc took %v to exit with a %v grace period", took, grace)
	}
	select {
	case err := <-done:
		if code := pgCode(err); code != "57P01" && code != "57014" {
			t.Fatalf("the running call got %v, want 57P01 or 57014", err)
		}
		t.Logf("the running call got %v", err)
	case <-ctx.Done():
		t.Fatal("the running call never returned")
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("an idle session survived the shutdown")
	}
	logs := srv.Logs()
	if strings.Contains(logs, "panic") || !strings.Contains(logs, `"message":"stopped"`) {
		t.Fatalf("unclean shutdown; logs:\n%s", logs)
	}

	// A new pgcdc on the same file and slot carries on where the last
	// committed batch ended.
	waitSlotReleased(ctx, t, src, "down")
	srv.Restart(t)
	rep2, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer rep2.Close(context.Background())
	res := callReplicate(ctx, t, rep2, `SELECT * FROM replicate('down', 'down_pub')`)
	if r := res["shop.big"]; r.inserts != rows {
		t.Fatalf("replicate after the restart = %+v, want %d inserts into shop.big", res, rows)
	}
	sameRows(ctx, t, src, rep2, srcOrders, repOrders)
	sameRows(ctx, t, src, rep2, "SELECT count(*), sum(v) FROM shop.big", "SELECT count(*), sum(v) FROM shop.big")
}
