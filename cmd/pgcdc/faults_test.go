package main_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

const faultSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(14,2) NOT NULL, note text, doc text);
CREATE TABLE events (id bigserial PRIMARY KEY, account int, kind text, payload jsonb, at timestamptz DEFAULT now());
CREATE TABLE tags (a int, b text);
ALTER TABLE tags REPLICA IDENTITY FULL;
CREATE TABLE audit (id bigserial, account int, note text);
INSERT INTO accounts SELECT g, g * 1.5, 'n' || g, CASE WHEN g % 50 = 0 THEN ` + bigText + ` END FROM generate_series(1, 20000) g;
INSERT INTO events (account, kind, payload) SELECT g % 100, 'seed', jsonb_build_object('g', g, 'pad', repeat('p', 200)) FROM generate_series(1, 300000) g;
INSERT INTO tags SELECT g, 't' || g FROM generate_series(1, 200) g;`

var faultTables = []struct{ src, rep string }{
	{"SELECT id, balance::text, note, md5(doc) FROM accounts ORDER BY id",
		"SELECT id, CAST(balance AS VARCHAR), note, md5(doc) FROM accounts ORDER BY id"},
	{`SELECT id, account, kind, payload::text, "at" FROM events ORDER BY id`,
		`SELECT id, account, kind, CAST(payload AS VARCHAR), "at" FROM events ORDER BY id`},
	{"SELECT a, b FROM tags ORDER BY a, b", "SELECT a, b FROM tags ORDER BY a, b"},
	// Append-only: a transaction applied twice would show as duplicates.
	{"SELECT id, account, note FROM audit ORDER BY id", "SELECT id, account, note FROM audit ORDER BY id"},
}

// workload changes the source in random transactions until stop is closed.
func workload(ctx context.Context, t *testing.T, dsn string, seed int64, stop <-chan struct{}, txs *atomic.Int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewSource(seed))
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		for i, n := 0, 1+rng.Intn(40); i < n; i++ {
			id := 1 + rng.Intn(25000)
			var q string
			var args []any
			switch rng.Intn(8) {
			case 7:
				q, args = `INSERT INTO audit (account, note) VALUES ($1, 'a')`, []any{id}
			case 0:
				q, args = `INSERT INTO accounts VALUES ($1, $2, 'ins') ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`, []any{id, rng.Intn(100000)}
			case 1:
				q, args = `UPDATE accounts SET balance = balance + 1, note = note || '+' WHERE id = $1`, []any{id}
			case 2:
				q, args = `DELETE FROM accounts WHERE id = $1`, []any{id}
			case 3:
				q, args = `INSERT INTO events (account, kind, payload) VALUES ($1, 'w', jsonb_build_object('r', $2::int))`, []any{id % 100, rng.Intn(1000)}
			case 4:
				q, args = `UPDATE events SET kind = 'u' WHERE id = $1`, []any{id}
			case 5:
				q, args = `UPDATE tags SET b = b || '.' WHERE a = $1`, []any{id % 200}
			default:
				q, args = `UPDATE accounts SET id = id + 100000 WHERE id = $1 AND id < 30000
					AND NOT EXISTS (SELECT 1 FROM accounts WHERE id = $1 + 100000)`, []any{id}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				tx.Rollback(ctx)
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		txs.Add(1)
	}
}

func tableHash(ctx context.Context, t *testing.T, conn *pgx.Conn, q string) (string, int) {
	rows := rowsOf(ctx, t, conn, q)
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:16], len(rows)
}

// assertEqual compares every table by an ordered hash of all its columns.
func assertEqual(ctx context.Context, t *testing.T, src, rep *pgx.Conn) {
	t.Helper()
	for _, q := range faultTables {
		sh, sn := tableHash(ctx, t, src, q.src)
		rh, rn := tableHash(ctx, t, rep, q.rep)
		if sh != rh {
			sameRows(ctx, t, src, rep, q.src, q.rep) // shows the difference
			t.Fatalf("%s: source %s (%d rows) != replica %s (%d rows)", q.src, sh, sn, rh, rn)
		}
		t.Logf("%-60.60s %d rows, hash %s on both sides", q.src, sn, sh)
	}
}

// slotWithinState checks invariant 1: the slot is never confirmed past what
// the destination has committed.
func slotWithinState(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica, slot string) {
	t.Helper()
	var state *int64
	if err := r.data.QueryRow(ctx, r.d.stateLSNSQL, slot).Scan(&state); err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	var confirmed int64
	if err := src.QueryRow(ctx, "SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if state == nil || confirmed > *state {
		t.Fatalf("slot confirmed at %d but the destination holds only %v", confirmed, state)
	}
}

// faultsExactlyOnce kills pgcdc with SIGKILL at random points of the
// snapshot and of replicate() while a workload runs on the source, restarts
// the source in the middle of a stream, and makes a destination write fail;
// after each, the next call must bring the replica to exactly the source.
func faultsExactlyOnce(t *testing.T, d *destination) {
	ctx := testContext(t, 8*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, faultSchema)
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	srv := r.srv
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 0

	stop := make(chan struct{})
	var txs atomic.Int64
	var wg sync.WaitGroup
	var workErr error
	// The seed is drawn here: rng is not safe for concurrent use.
	seed := rng.Int63()
	wg.Add(1)
	go func() {
		defer wg.Done()
		workErr = workload(ctx, t, dsn, seed, stop, &txs)
	}()
	startWorkload := func() {
		stop = make(chan struct{})
		workErr = nil
		seed := rng.Int63()
		wg.Add(1)
		go func() {
			defer wg.Done()
			workErr = workload(ctx, t, dsn, seed, stop, &txs)
		}()
	}
	stopWorkload := func() {
		if stop != nil {
			close(stop)
			wg.Wait()
			stop = nil
			if workErr != nil {
				t.Fatalf("workload: %v", workErr)
			}
		}
	}
	defer stopWorkload()

	// callThenKill runs sql and kills pgcdc after a random delay; it reports
	// whether the call finished first.
	callThenKill := func(sql string, maxDelay time.Duration) bool {
		conn := srv.Connect(ctx, t)
		done := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, sql); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			return true
		case <-time.After(time.Duration(rng.Int63n(int64(maxDelay)))):
		}
		srv.Kill()
		kills++
		<-done
		srv.Restart(t)
		return false
	}

	// Up to five kills during the snapshot, then one that runs to the end.
	const initSQL = `SELECT * FROM init_replication('f', 'f_pub', table_names => ARRAY['accounts', 'events', 'tags'], persist_snapshots => true)`
	snapshotKills := 0
	for i := 0; i < 5; i++ {
		start := time.Now()
		if callThenKill(initSQL, 1500*time.Millisecond) {
			break
		}
		snapshotKills++
		t.Logf("killed init_replication after %v", time.Since(start).Round(time.Millisecond))
	}
	if snapshotKills == 5 {
		start := time.Now()
		mustExec(ctx, t, srv.Connect(ctx, t), initSQL)
		t.Logf("init_replication with its snapshot took %v", time.Since(start).Round(time.Millisecond))
	}
	r.connect(ctx, t)
	slotWithinState(ctx, t, src, r, "f")
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('g', 'g_pub', table_names => 'audit', publish => 'insert', persist_snapshots => true)`)

	// History: slot h keeps every version of accounts (in schema hist). Its
	// reference is decoded by test_decoding from a slot created at the
	// same point, with the workload paused so both start from one state.
	stopWorkload()
	hist := startHistoryReference(ctx, t, src)
	mustExec(ctx, t, r.pgcdc, `SELECT * FROM init_replication('h', 'h_pub', table_names => 'accounts', dataset_name => 'hist', write_disposition => 'scd2', persist_snapshots => true)`)
	startWorkload()

	// Kills during replicate() with small batches, so kills land between
	// and inside batch commits, on both slots.
	replicateKills := 0
	for replicateKills < 20 {
		slot := []string{"f", "g", "h"}[rng.Intn(3)]
		sql := fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub', target_batch_size => %d)", slot, slot, 1+rng.Intn(200))
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		if !callThenKill(sql, 400*time.Millisecond) {
			replicateKills++
		}
		r.connect(ctx, t)
		slotWithinState(ctx, t, src, r, slot)
	}

	// The source restarts in the middle of a stream.
	conn := srv.Connect(ctx, t)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub', target_batch_size => 5)")
		done <- err
	}()
	time.Sleep(150 * time.Millisecond)
	if err := source.Restart(ctx, true); err != nil {
		t.Fatal(err)
	}
	err := <-done
	t.Logf("replicate() across a source crash returned: %v", err)
	// The workload's connection died with the source; start it again.
	wg.Wait()
	stop = make(chan struct{})
	workErr = nil
	seed = rng.Int63()
	wg.Add(1)
	go func() {
		defer wg.Done()
		workErr = workload(ctx, t, dsn, seed, stop, &txs)
	}()
	src.Close(ctx)
	if src, err = pgx.Connect(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	stopWorkload()
	r.connect(ctx, t)
	if _, err := r.pgcdc.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub')"); err != nil {
		t.Fatal(err)
	}
	// A destination write error: a constraint a client added to the replica
	// rejects a change, so the batch's commit fails.
	mustExec(ctx, t, r.data, "ALTER TABLE accounts ALTER COLUMN note SET NOT NULL")
	mustExec(ctx, t, src, "INSERT INTO accounts VALUES (900001, 1, NULL)")
	before := confirmedLSN(ctx, t, src, "f")
	_, err = r.pgcdc.Exec(ctx, "SELECT * FROM replicate('f', 'f_pub')")
	if err == nil {
		t.Fatal("replicate() succeeded although the destination rejects a change")
	}
	t.Logf("replicate() with a failing destination write: %v", err)
	if after := confirmedLSN(ctx, t, src, "f"); after != before {
		t.Fatalf("a failed destination write moved the slot from %s to %s", before, after)
	}
	slotWithinState(ctx, t, src, r, "f")
	mustExec(ctx, t, r.data, "ALTER TABLE accounts ALTER COLUMN note DROP NOT NULL")

	for i := 0; i < 2; i++ {
		for _, slot := range []string{"f", "g", "h"} {
			if _, err := r.pgcdc.Exec(ctx, fmt.Sprintf("SELECT * FROM replicate('%s', '%s_pub')", slot, slot)); err != nil {
				t.Fatal(err)
			}
			slotWithinState(ctx, t, src, r, slot)
		}
	}
	t.Logf("%d SIGKILLs (%d during the snapshot, %d during replicate), 1 source crash, 1 destination write error; %d source transactions",
		kills, snapshotKills, replicateKills, txs.Load())
	if kills < 20 {
		t.Fatalf("only %d kills injected", kills)
	}
	assertEqual(ctx, t, src, r.data)
	var dup int
	if err := r.data.QueryRow(ctx, "SELECT count(*) - count(DISTINCT id) FROM accounts").Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d duplicate keys in the replica (%v)", dup, err)
	}
	hist.assertEqual(ctx, t, src, r.data)
}

// historyReference is the history of accounts as the source's own logical
// decoding tells it (test_decoding, a plugin pgcdc does not use), to check
// the history pgcdc keeps without trusting any of its code.
type historyReference struct {
	slot  string
	start map[int64]accountRow // accounts when the slot was created
}

type accountRow struct {
	balance   string
	note, doc *string // doc as md5, as the replica query gives it
}

// startHistoryReference creates the test_decoding slot and reads the state
// it starts from; the caller keeps the source still meanwhile.
func startHistoryReference(ctx context.Context, t *testing.T, src *pgx.Conn) *historyReference {
	t.Helper()
	h := &historyReference{slot: "f_history_reference", start: map[int64]accountRow{}}
	mustExec(ctx, t, src, "SELECT pg_create_logical_replication_slot($1, 'test_decoding')", h.slot)
	rows, err := src.Query(ctx, "SELECT id, balance::text, note, md5(doc) FROM accounts")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var a accountRow
		if err := rows.Scan(&id, &a.balance, &a.note, &a.doc); err != nil {
			t.Fatal(err)
		}
		h.start[id] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return h
}

// version renders one version of a row: id, values, valid from, valid to
// ("snapshot" for versions the snapshot opened, "" while current).
func version(id int64, a accountRow, from, to string) string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	return fmt.Sprintf("%d|%s|%s|%s|%s|%s", id, a.balance, s(a.note), s(a.doc), from, to)
}

// decoded replays the decoded changes on the start state: per committed
// transaction, each row it touched closes its version at the commit time,
// and opens one if it still exists.
func (h *historyReference) decoded(ctx context.Context, t *testing.T, src *pgx.Conn) []string {
	t.Helper()
	mustExec(ctx, t, src, "SET TimeZone = 'UTC'")
	rows, err := src.Query(ctx, `SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'include-timestamp', '1', 'skip-empty-xacts', '1')
		WHERE data LIKE 'BEGIN%' OR data LIKE 'COMMIT%' OR data LIKE 'table public.accounts: %'`, h.slot)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type open struct {
		row  accountRow
		from string
	}
	state := map[int64]accountRow{}
	current := map[int64]open{}
	for id, a := range h.start {
		state[id] = a
		current[id] = open{a, "snapshot"}
	}
	var out []string
	touched := map[int64]bool{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(data, "BEGIN"):
			clear(touched)
		case strings.HasPrefix(data, "COMMIT"):
			_, at, ok := strings.Cut(data, "(at ")
			ts, err := time.Parse("2006-01-02 15:04:05.999999-07", strings.TrimSuffix(at, ")"))
			if !ok || err != nil {
				t.Fatalf("cannot read the commit time of %q: %v", data, err)
			}
			commit := ts.UTC().Format("2006-01-02 15:04:05.999999")
			for id := range touched {
				if v, ok := current[id]; ok {
					out = append(out, version(id, v.row, v.from, commit))
					delete(current, id)
				}
				if a, ok := state[id]; ok {
					current[id] = open{a, commit}
				}
			}
		default:
			op, fields := parseDecoded(t, data)
			switch op {
			case "INSERT", "UPDATE":
				id := fields.id(t, data)
				a := state[fields.oldID]
				if fields.oldID == 0 {
					a = state[id]
				}
				a.balance = *fields.values["balance"]
				a.note = fields.values["note"]
				if doc, ok := fields.values["doc"]; !ok {
					// unchanged TOAST: the row's own value
				} else if doc == nil {
					a.doc = nil
				} else {
					sum := fmt.Sprintf("%x", md5.Sum([]byte(*doc)))
					a.doc = &sum
				}
				if fields.oldID != 0 && fields.oldID != id {
					delete(state, fields.oldID)
					touched[fields.oldID] = true
				}
				state[id] = a
				touched[id] = true
			case "DELETE":
				id := fields.id(t, data)
				delete(state, id)
				touched[id] = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, v := range current {
		out = append(out, version(id, v.row, v.from, ""))
	}
	slices.Sort(out)
	return out
}

// decodedFields are the columns of one test_decoding change; a value left
// out as unchanged TOAST is absent, NULL is nil.
type decodedFields struct {
	values map[string]*string
	oldID  int64 // the old key of an update that changed it, else 0
}

func (f decodedFields) id(t *testing.T, data string) int64 {
	t.Helper()
	v := f.values["id"]
	if v == nil {
		t.Fatalf("no id in %q", data)
	}
	id, err := strconv.ParseInt(*v, 10, 64)
	if err != nil {
		t.Fatalf("id in %q: %v", data, err)
	}
	return id
}

// parseDecoded reads a test_decoding change such as
//
//	table public.accounts: UPDATE: old-key: id[integer]:5 new-tuple: id[integer]:100005 balance[numeric]:7.50 note[text]:'n5+' doc[text]:unchanged-toast-datum
//
// Text values are quoted, with quotes inside doubled; null is NULL.
func parseDecoded(t *testing.T, data string) (string, decodedFields) {
	t.Helper()
	rest := strings.TrimPrefix(data, "table public.accounts: ")
	op, rest, _ := strings.Cut(rest, ": ")
	f := decodedFields{values: map[string]*string{}}
	if k, ok := strings.CutPrefix(rest, "old-key: "); ok {
		old, tuple, _ := strings.Cut(k, " new-tuple: ")
		oldFields := decodedFields{values: map[string]*string{}}
		parseColumns(t, data, old, oldFields.values)
		f.oldID = oldFields.id(t, data)
		rest = tuple
	}
	parseColumns(t, data, rest, f.values)
	return op, f
}

func parseColumns(t *testing.T, data, s string, into map[string]*string) {
	t.Helper()
	for s != "" {
		name, after, ok := strings.Cut(s, "[")
		if !ok {
			t.Fatalf("cannot read %q at %q", data, s)
		}
		_, after, _ = strings.Cut(after, "]:")
		var v *string
		switch {
		case strings.HasPrefix(after, "'"):
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				if after[i] == '\'' {
					if i+1 < len(after) && after[i+1] == '\'' {
						b.WriteByte('\'')
						i++
						continue
					}
					break
				}
				b.WriteByte(after[i])
			}
			str := b.String()
			v, after = &str, after[i+1:]
		default:
			word, tail, _ := strings.Cut(after, " ")
			after = " " + tail
			if word == "unchanged-toast-datum" {
				s = strings.TrimPrefix(after, " ")
				continue
			}
			if word != "null" {
				v = &word
			}
		}
		into[name] = v
		s = strings.TrimPrefix(after, " ")
	}
}

// assertEqual compares the replica's history of accounts, version by
// version, with the decoded one. Versions the snapshot opened are valid
// from the snapshot's time, which the reference cannot know: both sides
// call it "snapshot".
func (h *historyReference) assertEqual(ctx context.Context, t *testing.T, src, rep *pgx.Conn) {
	t.Helper()
	want := h.decoded(ctx, t, src)
	rows, err := rep.Query(ctx, `SELECT id, CAST(balance AS VARCHAR), note, md5(doc), _pg_valid_from, _pg_valid_to,
		_pg_lsn = (SELECT min(_pg_lsn) FROM hist.accounts) FROM hist.accounts`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id int64
		var a accountRow
		var from time.Time
		var to *time.Time
		var snapshot bool
		if err := rows.Scan(&id, &a.balance, &a.note, &a.doc, &from, &to, &snapshot); err != nil {
			t.Fatal(err)
		}
		f, e := from.UTC().Format("2006-01-02 15:04:05.999999"), ""
		if snapshot {
			f = "snapshot"
		}
		if to != nil {
			e = to.UTC().Format("2006-01-02 15:04:05.999999")
		}
		got = append(got, version(id, a, f, e))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	closed := 0
	for _, v := range want {
		if !strings.HasSuffix(v, "|") {
			closed++
		}
	}
	if !slices.Equal(got, want) {
		for i := 0; i < max(len(got), len(want)); i++ {
			g, w := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Fatalf("history differs from the decoded one at version %d:\nreplica: %s\ndecoded: %s\n(%d versions in the replica, %d decoded)", i, g, w, len(got), len(want))
			}
		}
	}
	t.Logf("history of accounts: %d versions (%d closed) equal the ones decoded by test_decoding", len(got), closed)
}
