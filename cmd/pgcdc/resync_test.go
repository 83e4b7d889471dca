package main_test

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// orderWorkload inserts, updates and deletes shop.orders rows until stop
// is closed.
func orderWorkload(ctx context.Context, dsn string, stop <-chan struct{}, n *atomic.Int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var q string
		switch rng.Intn(4) {
		case 0, 1:
			q = `INSERT INTO shop.orders (customer_id, amount, note) SELECT 1 + g % 3, g, 'w' FROM generate_series(1, 5) g`
		case 2:
			q = fmt.Sprintf(`UPDATE shop.orders SET amount = amount + 1, note = note || '+' WHERE id %% 7 = %d`, rng.Intn(7))
		default:
			q = fmt.Sprintf(`DELETE FROM shop.orders WHERE id IN (SELECT id FROM shop.orders ORDER BY random() LIMIT %d)`, rng.Intn(3))
		}
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		n.Add(1)
		time.Sleep(time.Duration(rng.Intn(10)) * time.Millisecond)
	}
}

// tableState reads a table's failure and resync position from the state.
func tableState(ctx context.Context, t *testing.T, r *replica, slot, name string) string {
	t.Helper()
	rows := rowsOf(ctx, t, r.data, `SELECT COALESCE(failed, ''), resync_lsn IS NOT NULL FROM _pgcdc.tables WHERE slot_name = $1 AND dest_name = $2`, slot, name)
	return strings.Join(rows, ";")
}

const ordersSrc = "SELECT id, customer_id, amount::text, note FROM shop.orders ORDER BY id"
const ordersRep = "SELECT id, customer_id, CAST(amount AS VARCHAR), note FROM shop.orders ORDER BY id"

// TestResync rebuilds a damaged replica table with resync_table while a
// workload writes to it, on a continuous slot and on a slot driven by
// replicate(), and brings back a table whose changes failed while the
// other tables kept streaming; on every destination.
func TestResync(t *testing.T) {
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			if reason := d.skip(); reason != "" {
				t.Skip(reason)
			}
			resync(t, d)
		})
	}
}

func resync(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, shopSchema)
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) SELECT 1 + g % 3, g FROM generate_series(1, 5000) g`)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('rs', 'rs_pub', schema_name => 'shop', persist_snapshots => true)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('rs', 'rs_pub')`)

	for _, mode := range []string{"continuous", "replicate"} {
		if mode == "replicate" {
			mustExec(ctx, t, r.pgcdc, `SELECT * FROM stop_replication('rs')`)
		}
		stop := make(chan struct{})
		var n atomic.Int64
		var wg sync.WaitGroup
		var werr error
		wg.Add(1)
		go func() { defer wg.Done(); werr = orderWorkload(ctx, dsn, stop, &n) }()
		time.Sleep(300 * time.Millisecond)
		// The replica loses rows and gains a wrong one behind pgcdc's back.
		corrupt(ctx, t, r.data, `DELETE FROM shop.orders WHERE id % 10 = 0`)
		corrupt(ctx, t, r.data, `UPDATE shop.orders SET note = 'corrupt' WHERE id = 11`)
		var rows int64
		var table string
		if err := r.pgcdc.QueryRow(ctx, `SELECT table_name, snapshot_rows FROM resync_table('rs', 'orders')`).Scan(&table, &rows); err != nil {
			t.Fatalf("%s: resync_table: %v", mode, err)
		}
		if table != "shop.orders" || rows < 5000 {
			t.Fatalf("%s: resync_table returned %s, %d rows", mode, table, rows)
		}
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if werr != nil {
			t.Fatal(werr)
		}
		mustExec(ctx, t, r.pgcdc, `SELECT * FROM replicate('rs', 'rs_pub')`)
		sameRows(ctx, t, src, r.data, ordersSrc, ordersRep)
		t.Logf("%s: resync of %d rows under %d concurrent source transactions: replica equal to the source", mode, rows, n.Load())
	}

	// One table's failure: the replica rejects a customer, the orders go on.
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('rs', 'rs_pub')`)
	mustExec(ctx, t, r.data, `UPDATE shop.customers SET email = '' WHERE email IS NULL`)
	mustExec(ctx, t, r.data, `ALTER TABLE shop.customers ALTER COLUMN email SET NOT NULL`)
	mustExec(ctx, t, src, `INSERT INTO shop.customers VALUES (10, 'Nulla', NULL)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := tableState(ctx, t, r, "rs", "customers"); strings.Contains(strings.ToLower(st), "null") {
			t.Logf("customers failed: %s", st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("customers was not marked failed: %q", tableState(ctx, t, r, "rs", "customers"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// replication_status shows the table failed with its error, the others streaming.
	var states []string
	rows, err := r.pgcdc.Query(ctx, `SELECT * FROM replication_status('rs', table_detail => true)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		m, err := pgx.RowToMap(rows)
		if err != nil {
			t.Fatal(err)
		}
		if tn, _ := m["table_name"].(string); tn != "" {
			le, _ := m["last_error"].(string)
			states = append(states, fmt.Sprintf("%s|%v|%v", tn, m["state"], le != ""))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(states)
	if want := []string{"shop.customers|failed|true", "shop.orders|streaming|false"}; strings.Join(states, ",") != strings.Join(want, ",") {
		t.Fatalf("replication_status per table: %v, want %v", states, want)
	}
	mustExec(ctx, t, src, `INSERT INTO shop.orders (customer_id, amount) VALUES (10, 1); INSERT INTO shop.customers VALUES (11, 'Later', 'l@x')`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM replicate('rs', 'rs_pub')`)
	sameRows(ctx, t, src, r.data, ordersSrc, ordersRep)
	if got := rowsOf(ctx, t, r.data, `SELECT count(*) FROM shop.customers WHERE id >= 10`); got[0] != "0" {
		t.Fatalf("a failed table's changes were applied: %v", got)
	}
	// resync brings it back: its replica is rebuilt as the source has it.
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM resync_table('rs', 'shop.customers')`)
	mustExec(ctx, t, src, `UPDATE shop.customers SET name = 'After' WHERE id = 11`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM replicate('rs', 'rs_pub')`)
	sameRows(ctx, t, src, r.data, "SELECT id, name, email FROM shop.customers ORDER BY id", "SELECT id, name, email FROM shop.customers ORDER BY id")
	if st := tableState(ctx, t, r, "rs", "customers"); st != "|true" {
		t.Fatalf("customers after its resync: %q", st)
	}
	// The failure stays visible as the slot's last error.
	var lastErr *string
	if err := r.pgcdc.QueryRow(ctx, `SELECT last_error FROM stop_replication('rs')`).Scan(&lastErr); err != nil || lastErr == nil || !strings.Contains(strings.ToLower(*lastErr), "null") {
		t.Fatalf("stop_replication's last_error: %v, %v", lastErr, err)
	}
	for sql, code := range map[string]string{
		`SELECT * FROM resync_table('rs', 'nope')`:   "42P01",
		`SELECT * FROM resync_table('nope', 'nope')`: "42704",
	} {
		if _, err := r.pgcdc.Exec(ctx, sql); pgCode(err) != code {
			t.Errorf("%s: got %v, want SQLSTATE %s", sql, err, code)
		}
	}
}

// TestResyncKill9 kills pgcdc with SIGKILL in the middle of resync_table
// calls on a continuous slot under a concurrent workload; the replica ends
// exactly equal to the source.
func TestResyncKill9(t *testing.T) {
	d := duckdbDestination
	ctx := testContext(t, 5*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, lightFaultSchema)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('f', 'f_pub', table_names => ARRAY['accounts', 'events', 'tags'], persist_snapshots => true)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('g', 'g_pub', table_names => 'audit', publish => 'insert', persist_snapshots => true)`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('f', 'f_pub')`)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM start_replication('g', 'g_pub')`)

	stop := make(chan struct{})
	var txs atomic.Int64
	var wg sync.WaitGroup
	var workErr error
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seed := rng.Int63()
	wg.Add(1)
	go func() { defer wg.Done(); workErr = workload(ctx, t, dsn, seed, stop, &txs) }()

	kills, completed := 0, 0
	for i := 0; i < 8; i++ {
		table := []string{"accounts", "tags", "accounts", "audit"}[rng.Intn(4)]
		slot := "f"
		if table == "audit" {
			slot = "g"
		}
		conn := r.srv.Connect(ctx, t)
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, fmt.Sprintf("SELECT * FROM resync_table('%s', '%s')", slot, table))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("resync_table(%s): %v", table, err)
			}
			completed++
		case <-time.After(time.Duration(rng.Intn(1500)) * time.Millisecond):
			r.srv.Kill()
			<-done
			kills++
			r.restart(ctx, t)
		}
		slotWithinState(ctx, t, src, r, "f")
	}
	// One that completes, for each table.
	for _, table := range []string{"accounts", "tags"} {
		mustExec(ctx, t, r.pgcdc, fmt.Sprintf("SELECT * FROM resync_table('f', '%s')", table))
	}
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM resync_table('g', 'audit')")
	close(stop)
	wg.Wait()
	if workErr != nil {
		t.Fatalf("workload: %v", workErr)
	}
	for _, slot := range []string{"f", "g"} {
		mustExec(ctx, t, r.pgcdc, fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub')", slot, slot))
	}
	t.Logf("%d resyncs killed, %d completed before the kill, 3 at the end; %d source transactions", kills, completed, txs.Load())
	assertEqual(ctx, t, src, r.data)
	slotWithinState(ctx, t, src, r, "f")
	slotWithinState(ctx, t, src, r, "g")
}

// corrupt damages the replica behind pgcdc's back. That write can collide
// with pgcdc applying the workload's changes to the same rows: a deadlock
// on Postgres (40P01), a write-write conflict on DuckDB (40001). The
// database then fails one of the two, and when it is this one, it is tried
// again.
func corrupt(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		_, err := conn.Exec(ctx, sql)
		if err == nil {
			return
		}
		if code := pgCode(err); code != "40P01" && code != "40001" || attempt == 10 {
			t.Fatalf("%s: %v", sql, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
