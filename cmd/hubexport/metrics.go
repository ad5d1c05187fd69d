package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

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

// serveMetrics serves GET /metrics on addr, for a process without the API
// role (a worker's job counters live in the worker). It returns the
// listener's stop.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR %s: %w", addr, err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics_listener_failed", "error", err)
		}
	}()
	log.Info("metrics_listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
