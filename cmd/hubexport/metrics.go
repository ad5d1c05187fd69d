package main

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/metrics"
	"github.com/hubexport/hubexport/internal/store"
)

// newMetrics builds the process's metrics: hubexport's own, the active
// jobs read from PostgreSQL on each scrape, and Asynq's queue metrics.
func newMetrics(reg *export.Registry, st *store.Store, inspector *asynq.Inspector, log *slog.Logger) *metrics.Metrics {
	m := metrics.New(metrics.Options{
		Types: reg.Types(),
		ActiveJobs: func(ctx context.Context) ([]metrics.JobCount, error) {
			counts, err := st.ActiveJobs(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.JobCount, len(counts))
			for i, c := range counts {
				out[i] = metrics.JobCount{Type: c.Type, Status: c.Status, Jobs: c.Jobs}
			}
			return out, nil
		},
		Log: log,
	})
	if err := m.Register(asynqmetrics.NewQueueMetricsCollector(inspector)); err != nil {
		log.Warn("metrics_register_failed", "collector", "asynq", "error", err)
	}
	return m
}
