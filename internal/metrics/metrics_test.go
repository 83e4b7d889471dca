package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/metrics"
	"github.com/pgcdc/pgcdc/replicator"
)

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9187":           "127.0.0.1:9187",
		":9187":          "127.0.0.1:9187",
		"0.0.0.0:9187":   "0.0.0.0:9187",
		"[::1]:9187":     "[::1]:9187",
		"localhost:9187": "localhost:9187",
	} {
		if got := metrics.ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, rec.Code, body)
	}
	return string(body)
}

// TestMetrics: what the engine reports and each slot's position appear on
// /metrics; a slot whose WAL is at risk shows its wal_status.
func TestMetrics(t *testing.T) {
	confirmed, lag, lagSec := uint64(0x1000), int64(4096), 2.5
	var fail bool
	m := metrics.New(func(ctx context.Context, slot string) ([]replicator.SlotStatus, error) {
		if fail {
			return nil, errors.New("source down")
		}
		return []replicator.SlotStatus{{Slot: "s", ConfirmedLSN: &confirmed, CurrentLSN: 0x2000, LagBytes: &lag,
			LagSeconds: &lagSec, WALStatus: "extended", State: replicator.StateStreaming}}, nil
	})
	var _ replicator.Observer = m
	m.ChangesApplied("s", "public.t", "insert", 3)
	m.ChangesApplied("s", "public.t", "insert", 2)
	m.BatchCommitted("s", 20*time.Millisecond, 5)
	m.SnapshotProgress("s", "public.t", 10, 12, false)
	m.Error("s", "55000")
	h := m.Handler()
	if body := get(t, h, "/healthz"); body != "ok\n" {
		t.Fatalf("/healthz = %q", body)
	}
	body := get(t, h, "/metrics")
	for _, want := range []string{
		`pgcdc_changes_applied_total{op="insert",slot="s",table="public.t"} 5`,
		`pgcdc_batch_duration_seconds_count{slot="s"} 1`,
		`pgcdc_snapshot_rows_copied{slot="s",table="public.t"} 10`,
		`pgcdc_snapshot_rows_estimated{slot="s",table="public.t"} 12`,
		`pgcdc_snapshot_done{slot="s",table="public.t"} 0`,
		`pgcdc_errors_total{slot="s",sqlstate="55000"} 1`,
		`pgcdc_slot_lag_bytes{slot="s"} 4096`,
		`pgcdc_slot_lag_seconds{slot="s"} 2.5`,
		`pgcdc_slot_confirmed_lsn{slot="s"} 4096`,
		`pgcdc_source_current_lsn 8192`,
		`pgcdc_slot_wal_status{slot="s",wal_status="extended"} 1`,
		`pgcdc_slot_wal_status{slot="s",wal_status="reserved"} 0`,
		`pgcdc_slot_failed{slot="s"} 0`,
		`pgcdc_source_up 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	fail = true
	if body := get(t, h, "/metrics"); !strings.Contains(body, "pgcdc_source_up 0\n") || strings.Contains(body, "pgcdc_slot_lag_bytes") {
		t.Errorf("with the source down, /metrics shows:\n%s", body)
	}
}
