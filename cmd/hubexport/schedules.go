package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/jobs"
)

func newScheduleID() string { return export.ScheduleIDPrefix + ulid.Make().String() }

// newSchedules is the backup schedules' domain service, shared by the API
// (CRUD) and the scheduler role (ticks, retention, freshness).
func newSchedules(cfg *config.Config, d *deps, queue *jobs.Client, hooks *webhooks, log *slog.Logger) *export.Schedules {
	return &export.Schedules{
		Store: d.store, Queue: queue, Objects: d.objects, Overdue: hooks.dispatcher, Verified: hooks.dispatcher,
		ParseCron: jobs.ParseCron, AllowEvery: cfg.ScheduleAllowEvery, ArtifactRetention: cfg.ArtifactRetention,
		Encryption: backupEncryption(cfg),
		NewID:      newScheduleID, Now: time.Now, Log: log,
		Registry: registry(cfg), Owners: hub.New(d.pool), Notify: hooks.dispatcher, MaxPerUser: cfg.SchedulesPerUser,
	}
}

// scheduleHook is the worker's part: a succeeded scheduled backup updates
// the metrics and gets its schedule checked at once.
func scheduleHook(queue *jobs.Client, m jobs.Metrics, sch *export.Schedules, log *slog.Logger) *jobs.ScheduleHook {
	return &jobs.ScheduleHook{Queue: queue, Metrics: m, Schedules: sch, Log: log}
}

// startSchedules runs the scheduler role's backup schedules: the periodic
// task manager over the schedules table and the server of their ticks and
// checks. stop shuts both down, ticks first.
func startSchedules(ctx context.Context, cfg *config.Config, d *deps, sch *export.Schedules, queue *jobs.Client, m jobs.Metrics, log *slog.Logger) (stop func(), err error) {
	srv, mux := jobs.NewScheduleServer(d.rdb, jobs.ScheduleHandlers{
		Tick:  &jobs.ScheduleTickHandler{Schedules: sch, Log: log},
		Check: &jobs.ScheduleCheckHandler{Schedules: sch, Store: d.store, Redis: d.rdb, Log: log, Metrics: m},
	}, log)
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start schedule server: %w", err)
	}
	provider := &jobs.ScheduleProvider{Schedules: sch, Store: d.store, Client: queue.Client,
		CheckEvery: cfg.ScheduleCheckInterval, Ctx: context.WithoutCancel(ctx), Log: log}
	mgr, err := jobs.NewScheduleManager(d.rdb, provider, cfg.ScheduleSyncInterval, log)
	if err == nil {
		err = mgr.Start()
	}
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("start schedule manager: %w", err)
	}
	return func() { mgr.Shutdown(); srv.Shutdown() }, nil
}
