package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// The operations tests: verify_replication, check_replication, the
// metrics endpoint and slot safety, against every destination where the
// destination matters.

var opsScenarios = []scenario{
	{"verify_finds_corruption", verifyFindsCorruption},
	{"verify_ignores_changes_in_flight", verifyIgnoresChangesInFlight},
	{"verify_soft_deletes", verifySoftDeletes},
	{"verify_history", verifyHistory},
	{"status_and_metrics", statusAndMetrics},
}

func TestOps(t *testing.T) {
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			if reason := d.skip(); reason != "" {
				t.Skip(reason)
			}
			for _, s := range opsScenarios {
				t.Run(s.name, func(t *testing.T) { s.run(t, d) })
			}
		})
	}
}

// verifyTable holds the types whose text forms differ between Postgres and
// DuckDB, with the values where they differ most.
const verifyTable = `CREATE TABLE v (
	id int PRIMARY KEY, t text, n numeric(10,2), un numeric, f8 float8, f4 float4,
	ts timestamp, tstz timestamptz, d date, tm time, iv interval, b bytea, u uuid,
	j jsonb, ia int[], ta text[], bo boolean, tz timetz, tsa timestamp[], fa float8[], js json, nn numeric, ba bytea[]);
INSERT INTO v SELECT g, 'row "' || g || '", it''s', g * 1.5, g / 7.0, g * 0.1, g * 0.3,
	'2026-01-02 03:04:05.5'::timestamp + g * interval '1 hour', '2026-01-02 03:04:05.123456+02'::timestamptz + g * interval '1 day',
	'2026-01-02'::date + g, '12:34:56.5'::time, make_interval(months => g, days => g, secs => g * 1.5), decode(md5(g::text), 'hex'),
	md5(g::text)::uuid, jsonb_build_object('g', g, 'a', ARRAY[g, g]), ARRAY[g, NULL, g + 1], ARRAY['a', 'b c', NULL], g % 2 = 0,
	'12:34:56.789+05:30'::timetz, ARRAY['2026-01-02 03:04:05.5'::timestamp, NULL], ARRAY[g * 0.1, 1e20, 'NaN'], '{"a":  [1, 2]}'::json, 'NaN',
	ARRAY['\x00ff'::bytea, NULL]
	FROM generate_series(1, 200) g;
INSERT INTO v (id, iv, ts, tstz, d) VALUES (1010, '-1 day +02:00:00', 'infinity', '-infinity', 'infinity'), (1011, '25:00:00.000001', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00+14', '0001-01-01'),
	(1012, '-3 years -2 mons -1 day -00:00:01.5', '2026-06-01 00:00:00', '2026-06-01 12:00:00.5-07', '2026-06-01');
INSERT INTO v (id, f8, f4) VALUES (1001, 'NaN', 'Infinity'), (1002, '-Infinity', 3.0), (1003, 1e20, 1e-7), (1004, 1e15, 0.1), (1005, 3.0, -0.0),
	(1007, -1234567890123456.5, 1e6), (1008, 123456789012345, 1234567), (1009, 4e15 + 0.5, 12345678);
INSERT INTO v (id) VALUES (1006)`

type verifyRow struct {
	table, verdict string
	source, rep    int64
	keys           []string
}

func verify(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) []verifyRow {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out []verifyRow
	for rows.Next() {
		var r verifyRow
		if err := rows.Scan(&r.table, &r.verdict, &r.source, &r.rep, &r.keys); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// verifyFindsCorruption: a faithful replica of many types is equal; a row
// changed, one removed and one added in the replica itself are named.
func verifyFindsCorruption(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, verifyTable+`; CREATE TABLE w (a text, b int, PRIMARY KEY (a, b)); INSERT INTO w VALUES ('x,"y', 1), ('z', 2)`)
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('vf', 'vf_pub', table_names => ARRAY['v', 'w'], persist_snapshots => true)")
	mustExec(ctx, t, src, "UPDATE v SET t = 'changed' WHERE id = 5; DELETE FROM v WHERE id = 6; INSERT INTO v (id, t) VALUES (500, 'new')")
	// verify drains the slot first: the changes above are compared, not reported.
	got := verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vf')")
	if len(got) != 2 || got[0].verdict != "equal" || got[1].verdict != "equal" || got[0].source != 212 || got[0].rep != 212 || len(got[0].keys) != 0 {
		t.Fatalf("verify of a faithful replica: %+v", got)
	}
	if got[0].table != "public.v" || got[1].table != "public.w" || got[1].source != 2 {
		t.Fatalf("verify rows: %+v", got)
	}
	// Corrupt the replica directly.
	mustExec(ctx, t, r.data, "UPDATE public.v SET t = 'corrupt' WHERE id = 7")
	mustExec(ctx, t, r.data, "UPDATE public.v SET f8 = 2.5 WHERE id = 1003")
	mustExec(ctx, t, r.data, "DELETE FROM public.v WHERE id = 9")
	mustExec(ctx, t, r.data, "INSERT INTO public.v (id, t) VALUES (9999, 'only in the replica')")
	mustExec(ctx, t, r.data, `UPDATE public.w SET b = 3 WHERE a = 'x,"y'`)
	got = verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vf', 'v')")
	if len(got) != 1 || got[0].verdict != "different" || got[0].source != 212 || got[0].rep != 212 {
		t.Fatalf("verify of a corrupted replica: %+v", got)
	}
	if want := []string{"1003", "7", "9", "9999"}; !slices.Equal(got[0].keys, want) {
		t.Fatalf("differing keys = %q, want %q", got[0].keys, want)
	}
	got = verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vf', 'public.w')")
	if want := []string{`(x,"y,1)`, `(x,"y,3)`}; len(got) != 1 || got[0].verdict != "different" || !slices.Equal(got[0].keys, want) {
		t.Fatalf("verify of a corrupted composite key: %+v, want keys %q", got, want)
	}
	expectError(ctx, t, r.pgcdc, "42P01", "SELECT * FROM verify_replication('vf', 'nope')")
	expectError(ctx, t, r.pgcdc, "42704", "SELECT * FROM verify_replication('nope')")
	// Verify created nothing on the source: its temporary slot is gone.
	var slots int
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgcdc_verify_%'").Scan(&slots); err != nil || slots != 0 {
		t.Fatalf("temporary slots left: %d %v", slots, err)
	}
}

// verifyIgnoresChangesInFlight: writes that go on while verify runs, and
// were never replicated, are not differences.
func verifyIgnoresChangesInFlight(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, `CREATE TABLE f (id int PRIMARY KEY, n int); INSERT INTO f SELECT g, g FROM generate_series(1, 2000) g`)
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('vi', 'vi_pub', table_names => 'f', persist_snapshots => true)")
	writerCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, source.DSN(src.Config().Database))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for i := 1; writerCtx.Err() == nil; i++ {
			_, err := conn.Exec(writerCtx, fmt.Sprintf(`BEGIN; UPDATE f SET n = n + 1 WHERE id = %d; DELETE FROM f WHERE id = %d;
				INSERT INTO f VALUES (%d, 0); COMMIT`, i%2000+1, 2000-i%1000, 10000+i))
			if err != nil && writerCtx.Err() == nil {
				t.Error(err)
				return
			}
			writes.Add(1)
		}
	}()
	for i := 0; i < 3; i++ {
		got := verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vi')")
		if len(got) != 1 || got[0].verdict != "equal" || got[0].source != got[0].rep {
			stop()
			wg.Wait()
			t.Fatalf("verify %d during writes: %+v", i, got)
		}
	}
	stop()
	wg.Wait()
	if writes.Load() == 0 {
		t.Fatal("the writer made no change while verify ran")
	}
}

// verifySoftDeletes: rows kept as soft-deleted in the replica are gone at
// the source, not differences; verify drains with the slot's delete_mode.
func verifySoftDeletes(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, `CREATE TABLE sd (id int PRIMARY KEY, v text); INSERT INTO sd SELECT g, 'v' FROM generate_series(1, 50) g`)
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('vs', 'vs_pub', table_names => 'sd', persist_snapshots => true)")
	mustExec(ctx, t, src, "DELETE FROM sd WHERE id <= 5")
	callReplicate(ctx, t, r.pgcdc, "SELECT * FROM replicate('vs', 'vs_pub', delete_mode => 'soft')")
	mustExec(ctx, t, src, "DELETE FROM sd WHERE id IN (6, 7)")
	got := verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vs', delete_mode => 'soft')")
	if len(got) != 1 || got[0].verdict != "equal" || got[0].source != 43 || got[0].rep != 43 {
		t.Fatalf("verify with soft deletes: %+v", got)
	}
	if n := rowsOf(ctx, t, r.data, "SELECT count(*) FROM public.sd"); n[0] != "50" {
		t.Fatalf("the replica holds %s rows, want the 50 with the 7 soft-deleted ones", n[0])
	}
	expectError(ctx, t, r.pgcdc, "22023", "SELECT * FROM verify_replication('vs', delete_mode => 'sometimes')")
}

// verifyHistory: a history table's current versions are the source's rows;
// the closed versions are not differences.
func verifyHistory(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	src, r := setup(ctx, t, d, `CREATE TABLE hv (id int PRIMARY KEY, v text); INSERT INTO hv SELECT g, 'v' FROM generate_series(1, 30) g`)
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('vh', 'vh_pub', table_names => 'hv', persist_snapshots => true, write_disposition => 'scd2')")
	mustExec(ctx, t, src, "UPDATE hv SET v = 'w' WHERE id <= 10; DELETE FROM hv WHERE id > 25")
	got := verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vh')")
	if len(got) != 1 || got[0].verdict != "equal" || got[0].source != 25 || got[0].rep != 25 {
		t.Fatalf("verify of a history table: %+v", got)
	}
	if n := rowsOf(ctx, t, r.data, "SELECT count(*) FROM public.hv"); n[0] != "40" {
		t.Fatalf("the history holds %s versions, want 40", n[0])
	}
	mustExec(ctx, t, r.data, "UPDATE public.hv SET v = 'corrupt' WHERE id = 3 AND _pg_valid_to IS NULL")
	got = verify(ctx, t, r.pgcdc, "SELECT * FROM verify_replication('vh')")
	if len(got) != 1 || got[0].verdict != "different" || len(got[0].keys) != 1 {
		t.Fatalf("verify of a corrupted history table: %+v", got)
	}
}

// TestCheckReplication: the preflight names a login's missing privileges
// and the tables that would break, and finds nothing to fix once they are
// fixed. It reads only the source, so one destination is enough.
func TestCheckReplication(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	role := "lowpriv_" + src.Config().Database
	mustExec(ctx, t, src, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD 'pw';
		CREATE TABLE keyed (id int PRIMARY KEY, g int GENERATED ALWAYS AS (id * 2) STORED, n numeric);
		CREATE TABLE nokey (a int); CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING;
		GRANT SELECT ON keyed TO %s`, role, role))
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %s; DROP ROLE %s", role, role))
			c.Close(context.Background())
		}
	})
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword(role, "pw")
	r := duckdbDestination.start(ctx, t, pgcdctest.Options{Source: u.String()})
	findings := func(sql string) map[string][]string {
		t.Helper()
		rows, err := r.pgcdc.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out := map[string][]string{}
		for rows.Next() {
			var sev, check string
			var table, fix *string
			var detail string
			if err := rows.Scan(&sev, &check, &table, &detail, &fix); err != nil {
				t.Fatal(err)
			}
			key := sev + " " + check
			if table != nil {
				key += " " + *table
			}
			out[key] = append(out[key], detail)
			if sev == "error" && (fix == nil || *fix == "") {
				t.Errorf("%s has no fix", key)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := findings("SELECT * FROM check_replication('public', ARRAY['keyed', 'nokey', 'nothing', 'missing'])")
	for _, want := range []string{
		"error replication_privilege", "error table_owner public.keyed", "error select_privilege public.nokey",
		"error replica_identity public.nokey", "error replica_identity public.nothing", "error table public.missing",
		"warning generated_columns public.keyed", "info types_as_text public.keyed", "info snapshot_size public.keyed",
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("missing finding %q in %v", want, got)
		}
	}
	if _, ok := got["error select_privilege public.keyed"]; ok {
		t.Errorf("keyed is readable, yet: %v", got)
	}
	if d := strings.Join(got["error replication_privilege"], ""); !strings.Contains(d, role) {
		t.Errorf("replication_privilege detail %q does not name the role", d)
	}
	// The whole schema needs a superuser too.
	if _, ok := findings("SELECT * FROM check_replication('public')")["error publication_privilege"]; !ok {
		t.Error("no publication_privilege finding for a whole-schema check by a non-superuser")
	}
	// Fixed, the same check finds no error.
	mustExec(ctx, t, src, fmt.Sprintf(`ALTER ROLE %s REPLICATION; GRANT SELECT ON nokey TO %s; ALTER TABLE keyed OWNER TO %s;
		ALTER TABLE nokey OWNER TO %s; ALTER TABLE nokey REPLICA IDENTITY FULL`, role, role, role, role))
	got = findings("SELECT * FROM check_replication('public', ARRAY['keyed', 'nokey'])")
	for k := range got {
		if strings.HasPrefix(k, "error ") {
			t.Errorf("after the fixes: %s %v", k, got[k])
		}
	}
	// It created nothing.
	var slots, pubs int
	if err := src.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)").Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if pubs != 0 {
		t.Fatalf("check_replication left %d publications", pubs)
	}
}

// metricsURL is where a pgcdc started with --metrics-listen 127.0.0.1:0
// serves its metrics, as it logged at start-up (before it accepted clients).
func metricsURL(t *testing.T, srv *pgcdctest.Server) string {
	t.Helper()
	// The log reaches us through a pipe, a little after pgcdc accepts clients.
	re := regexp.MustCompile(`"metrics_listen":"([^"]+)"`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(srv.Logs()); m != nil {
			return "http://" + m[1]
		}
	}
	t.Fatalf("pgcdc did not log its metrics address:\n%s", srv.Logs())
	return ""
}

// scrape reads url and returns the body; the status must be 200.
func scrape(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, body)
	}
	return string(body)
}

// metricValue finds the sample of a series in a Prometheus text exposition:
// name{labels} value, with the labels in the exposition's (sorted) order.
func metricValue(body, series string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

type statusRow struct {
	slot                                 string
	table, state, lastError              *string
	lagBytes                             *int64
	walStatus                            *string
	lagSeconds                           *float64
	lastCommit                           *time.Time
	inserts, updates, deletes, truncates int64
}

func replicationStatus(ctx context.Context, t *testing.T, conn *pgx.Conn, slot string) []statusRow {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT slot_name, table_name, state, last_error, lag_bytes, wal_status, lag_seconds, last_commit_at,
		inserts, updates, deletes, truncates FROM replication_status($1, table_detail => true)`, slot)
	if err != nil {
		t.Fatal(err)
	}
	var out []statusRow
	for rows.Next() {
		var r statusRow
		if err := rows.Scan(&r.slot, &r.table, &r.state, &r.lastError, &r.lagBytes, &r.walStatus, &r.lagSeconds, &r.lastCommit,
			&r.inserts, &r.updates, &r.deletes, &r.truncates); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return "<NULL>"
	}
	return *p
}

// statusAndMetrics: replication_status() and /metrics show what a run
// applied, per table and operation, while and after it runs.
func statusAndMetrics(t *testing.T, d *destination) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, "CREATE TABLE m (id int PRIMARY KEY, v text); INSERT INTO m SELECT g, 'v' FROM generate_series(1, 100) g; CREATE TABLE other (id int PRIMARY KEY)")
	r := d.start(ctx, t, pgcdctest.Options{Source: dsn, Extra: []string{"--metrics-listen", "127.0.0.1:0"}})
	base := metricsURL(t, r.srv)
	if body := scrape(ctx, t, base+"/healthz"); body != "ok\n" {
		t.Fatalf("/healthz = %q", body)
	}
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('sm', 'sm_pub', table_names => ARRAY['m', 'other'], persist_snapshots => true)")
	mustExec(ctx, t, src, "INSERT INTO m SELECT g, 'w' FROM generate_series(101, 5100) g; UPDATE m SET v = 'u' WHERE id <= 3; DELETE FROM m WHERE id IN (4, 5); TRUNCATE other")
	// Scrape while replicate() runs: the endpoint answers, and the slot's series are there.
	done := make(chan struct{})
	go func() {
		defer close(done)
		callReplicate(ctx, t, r.pgcdc, "SELECT * FROM replicate('sm', 'sm_pub', target_batch_size => 100)")
	}()
	during := scrape(ctx, t, base+"/metrics")
	<-done
	if _, ok := metricValue(during, `pgcdc_slot_lag_bytes{slot="sm"}`); !ok {
		t.Errorf("no lag series during the run:\n%s", during)
	}
	expectError(ctx, t, r.pgcdc, "22023", "SELECT * FROM replicate('sm', 'wrong_pub')")
	body := scrape(ctx, t, base+"/metrics")
	for series, want := range map[string]float64{
		`pgcdc_changes_applied_total{op="insert",slot="sm",table="public.m"}`:       5000,
		`pgcdc_changes_applied_total{op="update",slot="sm",table="public.m"}`:       3,
		`pgcdc_changes_applied_total{op="delete",slot="sm",table="public.m"}`:       2,
		`pgcdc_changes_applied_total{op="truncate",slot="sm",table="public.other"}`: 1,
		`pgcdc_snapshot_rows_copied{slot="sm",table="public.m"}`:                    100,
		`pgcdc_snapshot_done{slot="sm",table="public.m"}`:                           1,
		`pgcdc_slot_wal_status{slot="sm",wal_status="reserved"}`:                    1,
		`pgcdc_slot_wal_status{slot="sm",wal_status="lost"}`:                        0,
		`pgcdc_errors_total{slot="sm",sqlstate="22023"}`:                            1,
		`pgcdc_slot_failed{slot="sm"}`:                                              0,
		`pgcdc_source_up`:                                                           1,
	} {
		if got, ok := metricValue(body, series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, series := range []string{`pgcdc_slot_confirmed_lsn{slot="sm"}`, `pgcdc_slot_lag_seconds{slot="sm"}`, `pgcdc_batch_duration_seconds_count{slot="sm"}`} {
		if v, ok := metricValue(body, series); !ok || v < 0 {
			t.Errorf("%s = %v, present %v", series, v, ok)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	st := replicationStatus(ctx, t, r.pgcdc, "sm")
	if len(st) != 3 || st[0].table != nil || str(st[1].table) != "public.m" || str(st[2].table) != "public.other" {
		t.Fatalf("status rows: %+v", st)
	}
	slot, m := st[0], st[1]
	if str(slot.state) != "streaming" || slot.lastError != nil || slot.lastCommit == nil || slot.lagSeconds == nil || str(slot.walStatus) != "reserved" ||
		slot.inserts != 5000 || slot.updates != 3 || slot.deletes != 2 || slot.truncates != 1 {
		t.Fatalf("slot status: %+v state=%s", slot, str(slot.state))
	}
	if str(m.state) != "streaming" || m.inserts != 5000 || m.updates != 3 || m.deletes != 2 || m.truncates != 0 || st[2].truncates != 1 {
		t.Fatalf("table status: %+v", m)
	}
}

// TestLostSlot: a slot that fell behind max_slot_wal_keep_size shows
// wal_status lost and state failed, and replicate() refuses it at once with
// the way out, instead of retrying forever.
func TestLostSlot(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"max_slot_wal_keep_size": "1MB", "wal_keep_size": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	src, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	mustExec(ctx, t, src, "CREATE TABLE l (id int PRIMARY KEY, v text); INSERT INTO l VALUES (1, 'a')")
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: c.DSN("postgres"), Extra: []string{"--metrics-listen", "127.0.0.1:0"}})
	rep := srv.Connect(ctx, t)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('ls', 'ls_pub', table_names => 'l', persist_snapshots => true)")
	// Write past max_slot_wal_keep_size, in several segments, and let a
	// checkpoint remove them.
	var status string
	for i := 0; i < 20 && status != "lost"; i++ {
		mustExec(ctx, t, src, "INSERT INTO l SELECT g, repeat('x', 1000) FROM generate_series(2, 3000) g ON CONFLICT (id) DO UPDATE SET v = excluded.v")
		mustExec(ctx, t, src, "SELECT pg_switch_wal()")
		mustExec(ctx, t, src, "CHECKPOINT")
		if err := src.QueryRow(ctx, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'ls'").Scan(&status); err != nil {
			t.Fatal(err)
		}
	}
	if status != "lost" {
		t.Fatalf("the slot's wal_status is %q after writing past max_slot_wal_keep_size", status)
	}
	start := time.Now()
	pe := expectError(ctx, t, rep, "55000", "SELECT * FROM replicate('ls', 'ls_pub')")
	if !strings.Contains(pe.Message, "lost") || !strings.Contains(pe.Message, "reset => true") {
		t.Fatalf("lost slot error does not name the recovery: %s", pe.Message)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("replicate() took %v to refuse a lost slot", d)
	}
	st := replicationStatus(ctx, t, rep, "ls")
	if str(st[0].walStatus) != "lost" || str(st[0].state) != "failed" || !strings.Contains(str(st[0].lastError), "reset => true") {
		t.Fatalf("status of a lost slot: wal_status=%s state=%s last_error=%s", str(st[0].walStatus), str(st[0].state), str(st[0].lastError))
	}
	body := scrape(ctx, t, metricsURL(t, srv)+"/metrics")
	if v, ok := metricValue(body, `pgcdc_slot_wal_status{slot="ls",wal_status="lost"}`); !ok || v != 1 {
		t.Fatalf("lost slot metric = %v %v", v, ok)
	}
	if v, ok := metricValue(body, `pgcdc_errors_total{slot="ls",sqlstate="55000"}`); !ok || v != 1 {
		t.Fatalf("lost slot errors metric = %v %v", v, ok)
	}
	// The way out works.
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('ls', 'ls_pub', table_names => 'l', persist_snapshots => true, reset => true)")
	callReplicate(ctx, t, rep, "SELECT * FROM replicate('ls', 'ls_pub')")
	if st := replicationStatus(ctx, t, rep, "ls"); str(st[0].state) != "streaming" || str(st[0].walStatus) == "lost" {
		t.Fatalf("after reset: state=%s wal_status=%s", str(st[0].state), str(st[0].walStatus))
	}
}
