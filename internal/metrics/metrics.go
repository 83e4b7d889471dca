package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/pgcdc/pgcdc/replicator"
)

// Metrics are pgcdc's Prometheus metrics.
type Metrics struct {
	reg          *prometheus.Registry
	changes      *prometheus.CounterVec
	batches      *prometheus.HistogramVec
	snapshotRows *prometheus.GaugeVec
	snapshotEst  *prometheus.GaugeVec
	snapshotDone *prometheus.GaugeVec
	errors       *prometheus.CounterVec
}

var _ replicator.Observer = (*Metrics)(nil)

// StatusFunc reads every slot's status, as replicator.Replicator.Status.
type StatusFunc func(ctx context.Context, slot string) ([]replicator.SlotStatus, error)

// New defines the metrics. status is read at every scrape for the slots'
// positions.
func New(status StatusFunc) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgcdc_changes_applied_total",
			Help: "Changes committed to the destination, by slot, replica table and operation (insert, update, delete, truncate)."},
			[]string{"slot", "table", "op"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgcdc_batch_duration_seconds",
			Help:    "Time to write and commit one destination transaction of the change stream.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"slot"}),
		snapshotRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgcdc_snapshot_rows_copied",
			Help: "Rows copied by the running or last snapshot of a table."}, []string{"slot", "table"}),
		snapshotEst: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgcdc_snapshot_rows_estimated",
			Help: "The planner's estimate of a snapshotted table's rows."}, []string{"slot", "table"}),
		snapshotDone: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgcdc_snapshot_done",
			Help: "1 once a table's snapshot has copied its last row, 0 while it runs."}, []string{"slot", "table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgcdc_errors_total",
			Help: "Failed replication calls, by slot and SQLSTATE."}, []string{"slot", "sqlstate"}),
	}
	m.reg.MustRegister(m.changes, m.batches, m.snapshotRows, m.snapshotEst, m.snapshotDone, m.errors,
		&slotCollector{status: status},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ChangesApplied implements replicator.Observer.
func (m *Metrics) ChangesApplied(slot, table, op string, n int64) {
	m.changes.WithLabelValues(slot, table, op).Add(float64(n))
}

// BatchCommitted implements replicator.Observer.
func (m *Metrics) BatchCommitted(slot string, d time.Duration, _ int64) {
	m.batches.WithLabelValues(slot).Observe(d.Seconds())
}

// SnapshotProgress implements replicator.Observer.
func (m *Metrics) SnapshotProgress(slot, table string, rows int64, estimate float64, done bool) {
	m.snapshotRows.WithLabelValues(slot, table).Set(float64(rows))
	m.snapshotEst.WithLabelValues(slot, table).Set(estimate)
	v := 0.0
	if done {
		v = 1
	}
	m.snapshotDone.WithLabelValues(slot, table).Set(v)
}

// Error implements replicator.Observer.
func (m *Metrics) Error(slot, sqlstate string) {
	m.errors.WithLabelValues(slot, sqlstate).Inc()
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// ListenAddr completes an address given without a host ("9187" or
// ":9187") with the loopback interface: metrics are private unless asked.
func ListenAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = ":" + addr
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Serve listens on addr and serves the handler until ctx ends. It returns
// once the listener is open, with the address it listens on; errors after
// that are logged.
func (m *Metrics) Serve(ctx context.Context, addr string, log zerolog.Logger) (string, error) {
	ln, err := net.Listen("tcp", ListenAddr(addr))
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("metrics listener stopped")
		}
	}()
	return ln.Addr().String(), nil
}

// walStatuses are the values of pg_replication_slots.wal_status.
var walStatuses = []string{"reserved", "extended", "unreserved", "lost"}

var (
	descLagBytes   = prometheus.NewDesc("pgcdc_slot_lag_bytes", "WAL the source retains for the slot: current LSN minus confirmed LSN.", []string{"slot"}, nil)
	descLagSeconds = prometheus.NewDesc("pgcdc_slot_lag_seconds", "0 when the slot has nothing waiting, otherwise the age of the latest point the replica holds everything up to.", []string{"slot"}, nil)
	descConfirmed  = prometheus.NewDesc("pgcdc_slot_confirmed_lsn", "The slot's confirmed flush LSN, as a byte position.", []string{"slot"}, nil)
	descCurrent    = prometheus.NewDesc("pgcdc_source_current_lsn", "The source's current WAL insert LSN, as a byte position.", nil, nil)
	descWALStatus  = prometheus.NewDesc("pgcdc_slot_wal_status", "1 for the slot's wal_status (reserved, extended, unreserved, lost), 0 for the others.", []string{"slot", "wal_status"}, nil)
	descActive     = prometheus.NewDesc("pgcdc_slot_active", "1 while a consumer streams from the slot.", []string{"slot"}, nil)
	descFailed     = prometheus.NewDesc("pgcdc_slot_failed", "1 when the slot's state is failed: its last call failed, or it lost WAL.", []string{"slot"}, nil)
	descSourceUp   = prometheus.NewDesc("pgcdc_source_up", "1 when the last scrape could read the source's slots.", nil, nil)
)

// slotCollector reads the slots' positions from the source at scrape time.
type slotCollector struct{ status StatusFunc }

func (c *slotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagBytes, descLagSeconds, descConfirmed, descCurrent, descWALStatus, descActive, descFailed, descSourceUp} {
		ch <- d
	}
}

func (c *slotCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slots, err := c.status(ctx, "")
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descSourceUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descSourceUp, prometheus.GaugeValue, 1)
	for i, s := range slots {
		if i == 0 {
			ch <- prometheus.MustNewConstMetric(descCurrent, prometheus.GaugeValue, float64(s.CurrentLSN))
		}
		if s.LagBytes != nil {
			ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(*s.LagBytes), s.Slot)
			ch <- prometheus.MustNewConstMetric(descConfirmed, prometheus.GaugeValue, float64(*s.ConfirmedLSN), s.Slot)
		}
		if s.LagSeconds != nil {
			ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, *s.LagSeconds, s.Slot)
		}
		for _, w := range walStatuses {
			v := 0.0
			if s.WALStatus == w {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descWALStatus, prometheus.GaugeValue, v, s.Slot, w)
		}
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, boolValue(s.Active), s.Slot)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, boolValue(s.State == replicator.StateFailed), s.Slot)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
