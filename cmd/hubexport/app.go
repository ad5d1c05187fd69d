package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/store"
	"github.com/hubexport/hubexport/jobs"
	"github.com/hubexport/hubexport/storage"
	"github.com/hubexport/hubexport/web"
)

type roles struct{ api, worker, scheduler bool }

// deps are the connections every role shares.
type deps struct {
	pool    *pgxpool.Pool
	rdb     redis.UniversalClient
	hubRdb  redis.UniversalClient // CCH's Redis (HUB_REDIS_URL): the backup lock, session snapshots
	store   *store.Store
	objects export.ObjectStore
}

func openDeps(ctx context.Context, cfg *config.Config, log *slog.Logger) (*deps, error) {
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	d := &deps{pool: pool, store: store.New(pool, time.Now)}
	if cfg.AutoMigrate {
		if err := store.Migrate(ctx, pool, log); err != nil {
			d.close()
			return nil, err
		}
	}
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	d.rdb = redis.NewClient(ropts)
	checkRedisPolicy(ctx, d.rdb, log)
	d.hubRdb = d.rdb
	if cfg.HubRedisURL != cfg.RedisURL {
		hopts, err := redis.ParseURL(cfg.HubRedisURL)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
		}
		d.hubRdb = redis.NewClient(hopts)
	}

	signingKey := cfg.URLSigningKey
	if signingKey == "" {
		// Every instance must sign and verify with the same key: keep one
		// in the database, created by whoever starts first.
		if signingKey, err = d.store.Setting(ctx, "url_signing_key", config.RandomKey()); err != nil {
			d.close()
			return nil, fmt.Errorf("load the URL signing key (run 'hubexport migrate' first if AUTO_MIGRATE=false): %w", err)
		}
	}
	d.objects, err = storage.Open(ctx, storage.Config{
		URL:        cfg.StorageURL,
		SigningKey: []byte(signingKey),
		PublicURL:  cfg.PublicURL,
		S3: storage.S3Config{
			Endpoint:        cfg.S3.Endpoint,
			PublicEndpoint:  cfg.S3.PublicEndpoint,
			Region:          cfg.S3.Region,
			AccessKeyID:     cfg.S3.AccessKeyID,
			SecretAccessKey: cfg.S3.SecretAccessKey,
			ForcePathStyle:  cfg.S3.ForcePathStyle,
		},
	})
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *deps) close() {
	if d.hubRdb != nil && d.hubRdb != d.rdb {
		_ = d.hubRdb.Close()
	}
	if d.rdb != nil {
		_ = d.rdb.Close()
	}
	d.pool.Close()
}

func openPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message can quote the DSN: say what is wrong without it.
		return nil, errors.New("DATABASE_URL cannot be parsed; use postgres://user:password@host:5432/dbname")
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "hubexport"
	// Idle connections are checked often and not kept long, so few dead
	// ones (a terminated backend, a restarted server) wait in the pool; a
	// connection idle over a second is pinged before use (pgxpool's
	// default), and reads that still meet a dead one are retried once
	// (internal/pgretry).
	pcfg.HealthCheckPeriod = 10 * time.Second
	pcfg.MaxConnIdleTime = time.Minute
	pcfg.MaxConnLifetime = 30 * time.Minute
	pcfg.MaxConnLifetimeJitter = time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	return pool, nil
}

// checkRedisPolicy warns when Redis may evict keys: Asynq loses tasks and
// leases then.
func checkRedisPolicy(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	res, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		log.WarnContext(ctx, "redis_unreachable_at_start", "error", err)
		return
	}
	if p := res["maxmemory-policy"]; p != "" && p != "noeviction" {
		log.WarnContext(ctx, "redis_eviction_policy", "maxmemory_policy", p,
			"advice", "set maxmemory-policy noeviction: with eviction Redis may drop queued tasks and leases")
	}
}

func newJobID() string {
	return "exp_" + ulid.Make().String()
}

func registry(cfg *config.Config) *export.Registry {
	return export.NewRegistry(export.ProbeLogSpec(), export.UsageLogSpec(), export.SessionRequestSpec(),
		export.BackupSpec(cfg.Backup.Location, backupEncryption(cfg)), export.RestoreSpec(checkDatabaseURL), export.VerifySpec())
}

// backupEncryption is the server's backup encryption policy: configured
// recipients make it required.
func backupEncryption(cfg *config.Config) export.BackupEncryption {
	return export.BackupEncryption{
		Required: len(cfg.Backup.AgeRecipients) > 0,
		CheckRecipient: func(s string) error {
			_, err := agefile.ParseRecipient(s)
			return err
		},
	}
}

// serve runs the chosen roles until ctx ends, then shuts down in order:
// stop taking requests, stop scheduling, hand running tasks back, close
// the pools.
//
// Each part's stop is deferred as soon as the part has started, so a step
// failing later (a taken address, a scheduler that cannot start) still
// stops everything already running before the pools close. Defers run
// newest first, so the parts start in the reverse of the shutdown order:
// the metrics listener first, the API last.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, r roles) error {
	log.InfoContext(ctx, "starting", append([]any{"api", r.api, "worker", r.worker, "scheduler", r.scheduler}, cfg.LogAttrs()...)...)
	if w := cfg.PublicURLWarning(); w != "" && r.api {
		log.WarnContext(ctx, "public_url_port_mismatch", "public_url", cfg.PublicURL, "http_addr", cfg.HTTPAddr, "advice", w)
	}
	// Configuration that can be wrong is read before anything starts.
	drillAdmin, err := verifyAdmin(cfg)
	if err != nil {
		return err
	}
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.close()
	var dbTools *jobs.DatabaseTools
	if r.worker {
		if dbTools, err = databaseTools(cfg, d); err != nil {
			return err
		}
	}
	reg := registry(cfg)
	hubDB := hub.New(d.pool)
	inspector := asynq.NewInspectorFromRedisClient(d.rdb)
	queue := &jobs.Client{Client: asynq.NewClientFromRedisClient(d.rdb), Inspector: inspector}
	hooks := newWebhooks(cfg, d, hubDB, queue, log)
	met := newMetrics(reg, d.store, inspector, log)
	schedules := newSchedules(cfg, d, queue, hooks, log)

	// The goroutines below end once their stops have run, before the
	// pools close.
	var wg sync.WaitGroup
	defer wg.Wait()
	errs := make(chan error, 1)

	if !r.api && cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg.MetricsAddr, met.Handler(), log)
		if err != nil {
			return err
		}
		// Last to stop, so a scrape sees the drain.
		defer stop()
	}

	// Every role cleans up leftovers (unfinished uploads of ended jobs,
	// expired artifacts and uploads, scratch databases of dead drills), not
	// only a scheduler.
	maint := &jobs.Maintenance{Store: d.store, Objects: d.objects, Redis: d.rdb, Log: log, Now: time.Now, Registry: reg,
		UploadRetention: cfg.ArtifactRetention, Uploads: d.store, VerifyAdmin: &drillAdmin}
	maintCtx, stopMaint := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMaint()
	wg.Add(1)
	go func() { defer wg.Done(); maint.Run(maintCtx, cfg.CleanupInterval) }()

	if r.worker {
		// What killed workers left in TMPDIR (restore dumps) is theirs
		// alone: no live process holds it.
		if swept, err := jobs.SweepTemp(""); err != nil {
			log.WarnContext(ctx, "temp_sweep_failed", "error", err)
		} else if len(swept) > 0 {
			log.InfoContext(ctx, "temp_swept", "count", len(swept), "paths", swept)
		}
		notify := export.Notifiers{hooks.dispatcher, scheduleHook(queue, met, schedules, log)}
		runner := &jobs.Runner{
			Store: d.store, Objects: d.objects, Registry: reg, Redis: d.rdb, Log: log, Now: time.Now,
			Retention: cfg.ArtifactRetention, LeaseTTL: cfg.JobLeaseTTL, ProgressEvery: 500 * time.Millisecond,
			Notify:  notify,
			Metrics: met,
		}
		srv, mux := jobs.NewServer(d.rdb, jobs.WorkerConfig{
			Concurrency: cfg.WorkerConcurrency, BackupConcurrency: cfg.Backup.Concurrency, ShutdownTimeout: cfg.ShutdownTimeout,
			RetryBase: cfg.RetryBaseDelay, RetryMax: cfg.RetryMaxDelay,
		}, jobs.Handlers{
			ProbeLogs:       &jobs.ProbeLogsHandler{Runner: runner, Source: hubDB},
			UsageLogs:       &jobs.UsageLogsHandler{Runner: runner, Source: hubDB, Feeds: d.store, FeedLag: cfg.FeedLag},
			SessionRequest:  &jobs.SessionRequestHandler{Runner: runner, Source: hub.NewSessions(d.hubRdb, hubDB)},
			Maintenance:     maint,
			WebhookDelivery: hooks.handler(met),
			DatabaseBackup:  &jobs.DatabaseBackupHandler{Runner: runner, DB: dbTools, Size: hubDB, AgeRecipients: cfg.Backup.AgeRecipients},
			DatabaseRestore: &jobs.DatabaseRestoreHandler{Runner: runner, DB: dbTools, Audit: d.store.Audit, Identities: cfg.Backup.AgeIdentities, Uploads: d.store},
			BackupVerify:    &jobs.BackupVerifyHandler{Runner: runner, DB: dbTools, Admin: drillAdmin, Identities: cfg.Backup.AgeIdentities},
		}, log)
		if err := srv.Start(mux); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
		defer func() {
			stopRec()
			srv.Shutdown()
			if !runner.Wait(10 * time.Second) {
				log.Warn("worker_stop_timeout", "detail", "some exports did not record their hand-back within 10s")
			}
			log.Info("worker_stopped")
		}()
		rec := &jobs.Reconciler{Store: d.store, Queue: queue, Inspector: inspector, Log: log,
			Interval: cfg.ReconcileInterval, Quiet: cfg.ReconcileInterval, Notify: hooks.dispatcher}
		wg.Add(1)
		go func() { defer wg.Done(); rec.Run(recCtx) }()
		pump := &jobs.DeliveryPump{Store: d.store, Queue: queue, Inspector: inspector, Log: log,
			Interval: cfg.ReconcileInterval, Quiet: cfg.ReconcileInterval, Notify: notify}
		wg.Add(1)
		go func() { defer wg.Done(); pump.Run(recCtx) }()
		log.InfoContext(ctx, "worker_started", "concurrency", cfg.WorkerConcurrency, "backup_concurrency", cfg.Backup.Concurrency)
	}

	if r.scheduler {
		stopSchedules, err := startSchedules(ctx, cfg, d, schedules, queue, met, log)
		if err != nil {
			return err
		}
		defer stopSchedules()
		sched, err := jobs.NewScheduler(d.rdb, log, cfg.CleanupInterval)
		if err != nil {
			return err
		}
		if err := sched.Start(); err != nil {
			return fmt.Errorf("start scheduler: %w", err)
		}
		// Stopped before the worker, so no tick lands on a stopping worker.
		defer func() { sched.Shutdown(); log.Info("scheduler_stopped") }()
		log.InfoContext(ctx, "scheduler_started")
	}

	if r.api {
		svc := &export.Service{
			Store: d.store, Queue: queue, Objects: d.objects, Registry: reg, Log: log,
			NewID: newJobID, Now: time.Now, MaxActive: cfg.MaxActiveJobs, LinkTTL: cfg.DownloadLinkTTL,
			Notify:  hooks.dispatcher,
			Uploads: d.store, MaxUploadBytes: cfg.RestoreUploadMaxBytes,
		}
		opts := web.Options{
			Service: svc,
			Auth:    hub.NewAuthenticator(hubDB, cfg.AdminToken, cfg.KeyCacheTTL).WithFailureTTL(cfg.AuthFailureCacheTTL),
			Lookups: &export.Lookups{Dir: hubDB},
			Log:     log,
			Ready: map[string]func(context.Context) error{
				"postgres": d.store.Ping,
				"redis":    func(ctx context.Context) error { return d.rdb.Ping(ctx).Err() },
				"storage":  d.objects.Ping,
			},
			TrustedProxies: cfg.TrustedProxies,
			// An open stream re-checks its key as often as a cached key is re-read.
			StreamRecheck:         max(cfg.KeyCacheTTL, time.Second),
			StreamsPerPrincipal:   cfg.EventStreamsPerPrincipal,
			StreamsMax:            cfg.EventStreamsMax,
			DownloadWriteTimeout:  cfg.DownloadWriteTimeout,
			AuthFailuresPerMinute: cfg.AuthFailuresPerMinute,
			Webhooks:              hooks.api(),
			Audit:                 &export.AuditLog{Store: d.store},
			Schedules:             schedules,
			Metrics:               met.Handler(),
		}
		if fs, ok := d.objects.(storage.FileServer); ok {
			opts.Files = fs.Handler()
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
		}
		httpSrv := web.Server(cfg.HTTPAddr, web.New(opts))
		baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
		httpSrv.BaseContext = func(net.Listener) context.Context { return baseCtx }
		// Event streams never end by themselves: end them when shutdown
		// starts so Shutdown does not wait for them.
		httpSrv.RegisterOnShutdown(cancelBase)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = httpSrv.Shutdown(sctx)
			log.Info("api_stopped")
		}()
		log.InfoContext(ctx, "api_listening", "addr", ln.Addr().String())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting_down")
		return nil
	case err := <-errs:
		return err
	}
}

func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return store.Migrate(ctx, pool, log)
}
