package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "hubexport"

// Label values the rest of the program shares with dashboards and alerts.
const (
	// LockBackup is the backup lock (CCH's database:backup:lock).
	LockBackup = "backup"
	// Webhook delivery attempt outcomes.
	WebhookSucceeded = "succeeded"
	WebhookFailed    = "failed"
)

// Final statuses a job is counted under when it ends.
var finalStatuses = []string{"succeeded", "failed", "canceled"}

// Unfinished statuses the active-jobs gauge reports.
var activeStatuses = []string{"queued", "running"}

// JobCount is how many jobs of one type are in one status.
type JobCount struct {
	Type   string
	Status string
	Jobs   int64
}

// Options configures New.
type Options struct {
	// Types lists the export types this build runs. Their series start at
	// 0, so rate() and absent() work before the first job.
	Types []string
	// ActiveJobs, if set, counts queued and running jobs by type and status;
	// it is called on each scrape and must be cheap.
	ActiveJobs func(ctx context.Context) ([]JobCount, error)
	// ScrapeTimeout bounds ActiveJobs; default 3s.
	ScrapeTimeout time.Duration
	Log           *slog.Logger
}

// Metrics holds the registry and hubexport's metrics. Its methods are safe
// for concurrent use; a nil *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	mu       sync.Mutex
	backupAt map[string]float64
	verifyAt map[string]float64

	jobsFinished *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	rows         *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	lockWaits    *prometheus.CounterVec
	lockWaitSecs *prometheus.CounterVec
	webhooks     *prometheus.CounterVec
	lastBackup   *prometheus.GaugeVec
	lastVerified *prometheus.GaugeVec
}

// New builds the registry with hubexport's metrics and the Go runtime and
// process collectors.
func New(o Options) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		log:      o.Log,
		backupAt: map[string]float64{},
		verifyAt: map[string]float64{},
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_finished_total",
			Help: "Export jobs that reached a final status in this process, by type and status (succeeded, failed, canceled).",
		}, []string{"type", "status"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_duration_seconds",
			Help: "Run time of the last attempt of each finished export job, by type and final status.",
			// From sub-second probe logs to multi-hour dumps.
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400},
		}, []string{"type", "status"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "exported_rows_total",
			Help: "Rows (lines, objects) written by succeeded export jobs, by type.",
		}, []string{"type"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "exported_bytes_total",
			Help: "Bytes of artifacts written by succeeded export jobs, by type.",
		}, []string{"type"}),
		lockWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lock_waits_total",
			Help: "Times a job found a lock (such as the backup lock) taken and had to wait, by lock.",
		}, []string{"lock"}),
		lockWaitSecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lock_wait_seconds_total",
			Help: "Seconds jobs spent waiting for a lock, by lock.",
		}, []string{"lock"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts, by outcome.",
		}, []string{"outcome"}),
		lastBackup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_successful_backup_timestamp_seconds",
			Help: "Unix time of the last successful backup of each schedule seen by this process.",
		}, []string{"schedule"}),
		lastVerified: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "backup_last_verified_timestamp_seconds",
			Help: "Unix time of the last restore drill that passed, of each schedule seen by this process.",
		}, []string{"schedule"}),
	}
	for _, t := range o.Types {
		for _, s := range finalStatuses {
			m.jobsFinished.WithLabelValues(t, s)
		}
		m.rows.WithLabelValues(t)
		m.bytes.WithLabelValues(t)
	}
	// Series that alerts watch exist from the start, at 0.
	m.lockWaits.WithLabelValues(LockBackup)
	m.lockWaitSecs.WithLabelValues(LockBackup)
	for _, o := range []string{WebhookSucceeded, WebhookFailed} {
		m.webhooks.WithLabelValues(o)
	}
	m.reg.MustRegister(
		m.jobsFinished, m.jobDuration, m.rows, m.bytes,
		m.lockWaits, m.lockWaitSecs, m.webhooks, m.lastBackup, m.lastVerified,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.ActiveJobs != nil {
		timeout := o.ScrapeTimeout
		if timeout <= 0 {
			timeout = 3 * time.Second
		}
		m.reg.MustRegister(&activeJobs{count: o.ActiveJobs, types: o.Types, timeout: timeout})
	}
	return m
}

// Register adds a collector, such as Asynq's queue metrics.
func (m *Metrics) Register(c prometheus.Collector) error {
	return m.reg.Register(c)
}

// Handler serves the registry in Prometheus' text format. A collector that
// fails (PostgreSQL down during a scrape) is logged and left out; the
// other metrics are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      errorLog{m.log},
	})
}

// JobEnded records a job that reached final status (succeeded, failed or
// canceled) after running for d, with the rows and bytes it wrote.
func (m *Metrics) JobEnded(jobType, status string, d time.Duration, rows, bytes int64) {
	if m == nil {
		return
	}
	m.jobsFinished.WithLabelValues(jobType, status).Inc()
	m.jobDuration.WithLabelValues(jobType, status).Observe(d.Seconds())
	if status == "succeeded" {
		m.rows.WithLabelValues(jobType).Add(float64(max(rows, 0)))
		m.bytes.WithLabelValues(jobType).Add(float64(max(bytes, 0)))
	}
}

// LockWaited records that a job found lock taken and waited d for it
// (whether it got it in the end or not).
func (m *Metrics) LockWaited(lock string, d time.Duration) {
	if m == nil {
		return
	}
	m.lockWaits.WithLabelValues(lock).Inc()
	m.lockWaitSecs.WithLabelValues(lock).Add(max(d.Seconds(), 0))
}

// WebhookDelivered records one delivery attempt's outcome: WebhookSucceeded,
// WebhookFailed, or another word from a small fixed set (never a URL).
func (m *Metrics) WebhookDelivered(outcome string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(outcome).Inc()
}

// BackupSucceeded records the time of a successful backup of schedule.
func (m *Metrics) BackupSucceeded(schedule string, at time.Time) {
	if m == nil {
		return
	}
	v := float64(at.UnixNano()) / 1e9
	m.mu.Lock()
	defer m.mu.Unlock()
	// Concurrent workers may report out of order: keep the latest.
	if v > m.backupAt[schedule] {
		m.backupAt[schedule] = v
		m.lastBackup.WithLabelValues(schedule).Set(v)
	}
}

// BackupVerified records the time a restore drill of schedule's backups
// passed.
func (m *Metrics) BackupVerified(schedule string, at time.Time) {
	if m == nil {
		return
	}
	v := float64(at.UnixNano()) / 1e9
	m.mu.Lock()
	defer m.mu.Unlock()
	if v > m.verifyAt[schedule] {
		m.verifyAt[schedule] = v
		m.lastVerified.WithLabelValues(schedule).Set(v)
	}
}

// activeJobs reports queued and running jobs from PostgreSQL at scrape
// time, so every instance agrees and nothing drifts after a crash.
type activeJobs struct {
	count   func(ctx context.Context) ([]JobCount, error)
	types   []string
	timeout time.Duration
}

var activeJobsDesc = prometheus.NewDesc(
	prometheus.BuildFQName(namespace, "", "jobs_active"),
	"Export jobs queued or running now (all instances, read from PostgreSQL), by type and status.",
	[]string{"type", "status"}, nil,
)

func (a *activeJobs) Describe(ch chan<- *prometheus.Desc) { ch <- activeJobsDesc }

func (a *activeJobs) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	counts, err := a.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(activeJobsDesc, fmt.Errorf("metrics: count active jobs: %w", err))
		return
	}
	seen := make(map[[2]string]int64, len(counts))
	for _, c := range counts {
		seen[[2]string{c.Type, c.Status}] += c.Jobs
	}
	for _, t := range a.types {
		for _, s := range activeStatuses {
			if _, ok := seen[[2]string{t, s}]; !ok {
				seen[[2]string{t, s}] = 0
			}
		}
	}
	for k, n := range seen {
		ch <- prometheus.MustNewConstMetric(activeJobsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// errorLog sends promhttp's errors to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Println(v ...any) {
	if e.log != nil {
		e.log.Warn("metrics_scrape_error", "error", fmt.Sprint(v...))
	}
}
