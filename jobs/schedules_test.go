package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/store"
	"github.com/hubexport/hubexport/internal/webhook"
)

func TestParseCronIsAsynqsDialect(t *testing.T) {
	t.Parallel()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		spec string
		loc  *time.Location
		next time.Time // zero: the spec is refused
	}{
		{"0 3 * * *", time.UTC, time.Date(2026, 1, 30, 3, 0, 0, 0, time.UTC)},
		{"0 3 * * *", shanghai, time.Date(2026, 1, 29, 19, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.UTC, time.Date(2026, 1, 29, 10, 15, 0, 0, time.UTC)},
		{"30 2 * * MON", time.UTC, time.Date(2026, 2, 2, 2, 30, 0, 0, time.UTC)},
		{"@daily", shanghai, time.Date(2026, 1, 29, 16, 0, 0, 0, time.UTC)},
		{"@hourly", time.UTC, time.Date(2026, 1, 29, 11, 0, 0, 0, time.UTC)},
		{"61 * * * *", time.UTC, time.Time{}},
		{"0 25 * * *", time.UTC, time.Time{}},
		{"x * * * *", time.UTC, time.Time{}},
		{"@fortnightly", time.UTC, time.Time{}},
	} {
		s, err := ParseCron(c.spec, c.loc)
		if c.next.IsZero() {
			if err == nil {
				t.Errorf("%q accepted", c.spec)
			} else if strings.Contains(err.Error(), "CRON_TZ") {
				t.Errorf("%q: error shows our prefix: %v", c.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := s.Next(at); !got.Equal(c.next) {
			t.Errorf("%q in %s: next %v, want %v", c.spec, c.loc, got, c.next)
		}
	}
	// What the manager registers parses the same way in Asynq's scheduler.
	sch := &export.Schedule{Cron: "0 3 * * *", Timezone: "Asia/Shanghai"}
	if got := Cronspec(sch); got != "CRON_TZ=Asia/Shanghai 0 3 * * *" {
		t.Fatalf("cronspec %q", got)
	}
	if _, err := asynq.NewScheduler(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, nil).Register(Cronspec(sch), NewScheduleTickTask("x", nil)); err != nil {
		t.Fatalf("asynq refuses %q: %v", Cronspec(sch), err)
	}
}

// scheduleFixture is a store, a Redis, a local object store and the
// schedules service over them.
type scheduleFixture struct {
	pool      *pgxpool.Pool
	store     *store.Store
	rdb       *redis.Client
	objects   export.ObjectStore
	dir       string
	schedules *export.Schedules
	check     *ScheduleCheckHandler
	inspector *asynq.Inspector
	client    *asynq.Client
	now       time.Time
	mu        sync.Mutex
}

func (f *scheduleFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func scheduleSetup(t *testing.T) *scheduleFixture {
	t.Helper()
	pool, rdb, objects, dir := backends(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &scheduleFixture{pool: pool, rdb: rdb, objects: objects, dir: dir, now: time.Now().UTC()}
	f.store = store.New(pool, f.clock)
	f.client = asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { f.client.Close() })
	f.inspector = asynq.NewInspectorFromRedisClient(rdb)
	n := 0
	f.schedules = &export.Schedules{
		Store: f.store, Queue: &Client{Client: f.client, Inspector: f.inspector}, Objects: objects,
		ParseCron: ParseCron, AllowEvery: true, ArtifactRetention: time.Hour,
		NewID: func() string { n++; return fmt.Sprintf("sch_%026d", n) }, Now: f.clock, Log: log,
	}
	f.check = &ScheduleCheckHandler{Schedules: f.schedules, Store: f.store, Redis: rdb, Log: log}
	return f
}

func (f *scheduleFixture) create(t *testing.T, in export.ScheduleInput) *export.Schedule {
	t.Helper()
	sch, err := f.schedules.Create(context.Background(), export.AdminToken(), in)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// succeeded fabricates a succeeded backup of sch finished age ago, with a
// real file in storage.
func (f *scheduleFixture) succeeded(t *testing.T, sch *export.Schedule, age time.Duration) *export.Job {
	t.Helper()
	ctx := context.Background()
	slot := f.clock().Add(-age).Truncate(time.Second)
	j := &export.Job{ID: export.SlotJobID(sch.ID, slot), Type: export.TypeDatabaseBackup, Format: export.FormatDump,
		Status: export.StatusQueued, Params: []byte(`{"mode":"full"}`), UserID: export.AdminTokenUserID, KeyID: -1,
		ScheduleID: sch.ID, RequestHash: "h", CreatedAt: slot, UpdatedAt: slot}
	if _, err := f.store.CreateScheduledJob(ctx, j, slot); err != nil {
		t.Fatal(err)
	}
	key := "backups/" + j.ID + "/backup.dump"
	up, err := f.objects.Create(ctx, key, export.ContentTypeDump)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(up, "PGDMP "+j.ID)
	if err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.BeginAttempt(ctx, j.ID, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Succeed(ctx, j.ID, "tok", key, export.Result{Filename: "backup.dump", SizeBytes: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE hubexport.jobs SET finished_at = $2 WHERE id = $1`, j.ID, slot); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *scheduleFixture) runCheck(t *testing.T, scheduleID string) {
	t.Helper()
	if err := f.check.ProcessTask(context.Background(), NewScheduleCheckTask(scheduleID)); err != nil {
		t.Fatal(err)
	}
}

func (f *scheduleFixture) fileExists(key string) bool {
	_, err := os.Stat(filepath.Join(f.dir, key))
	return err == nil
}

// Retention keeps the newest keep_last successful backups, drops those
// older than max_age_days but never the newest, deletes the dropped files
// and audits each deletion; other backups are left alone.
func TestRetentionDeletesExactlyTheRightBackups(t *testing.T) {
	t.Parallel()
	f := scheduleSetup(t)
	ctx := context.Background()
	day := 24 * time.Hour
	sch := f.create(t, export.ScheduleInput{Name: ptr("nightly"), Cron: ptr("0 3 * * *"),
		Retention: &export.RetentionInput{KeepLast: ptr(4), MaxAgeDays: ptr(3)}})
	// Ages in days: 0.5, 1.5, 2.5 and 3.5 are the newest four; 3.5 is too
	// old; 4.5 and 5.5 are beyond keep_last.
	var backups []*export.Job
	for _, age := range []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5} {
		backups = append(backups, f.succeeded(t, sch, time.Duration(age*float64(day))))
	}
	other := f.create(t, export.ScheduleInput{Name: ptr("other"), Cron: ptr("0 4 * * *"), Retention: &export.RetentionInput{KeepLast: ptr(1)}})
	otherBackup := f.succeeded(t, other, 10*day)
	// A failed and a queued backup of the schedule count for nothing.
	if _, err := f.store.CreateScheduledJob(ctx, &export.Job{ID: export.SlotJobID(sch.ID, f.now), Type: export.TypeDatabaseBackup,
		Format: export.FormatDump, Params: []byte(`{}`), UserID: -1, KeyID: -1, ScheduleID: sch.ID, RequestHash: "h",
		CreatedAt: f.now, UpdatedAt: f.now}, f.now); err != nil {
		t.Fatal(err)
	}

	f.runCheck(t, "") // every schedule
	wantExpired := map[string]string{backups[3].ID: "max_age", backups[4].ID: "not_kept", backups[5].ID: "not_kept"}
	for _, b := range backups {
		got, err := f.store.Job(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, dropped := wantExpired[b.ID]
		if dropped != (got.Status == export.StatusExpired) || dropped == f.fileExists(b.StorageKey) {
			t.Errorf("backup %s (%s old): status %s, file there %v; dropped %v", b.ID,
				f.now.Sub(*b.FinishedAt).Round(time.Hour), got.Status, f.fileExists(b.StorageKey), dropped)
		}
	}
	if got, _ := f.store.Job(ctx, otherBackup.ID); got.Status != export.StatusSucceeded || !f.fileExists(otherBackup.StorageKey) {
		t.Errorf("the other schedule's only (newest) backup was dropped: %s", got.Status)
	}
	page, err := f.store.AuditEntries(ctx, export.AuditFilter{Action: "schedule.retention_delete", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 3 {
		t.Fatalf("%d retention audit entries, want 3", len(page.Entries))
	}
	for _, e := range page.Entries {
		id := strings.TrimPrefix(e.Target, "job:")
		if e.Actor != export.SchedulerActor || e.Params["reason"] != wantExpired[id] || e.Params["schedule_id"] != sch.ID || e.Outcome != "ok" {
			t.Errorf("audit entry %+v", e)
		}
	}
	// A second pass finds nothing more to do.
	f.runCheck(t, sch.ID)
	if page, _ := f.store.AuditEntries(ctx, export.AuditFilter{Action: "schedule.retention_delete", Limit: 50}); len(page.Entries) != 3 {
		t.Fatalf("second pass deleted again: %d entries", len(page.Entries))
	}
}

// Calendar retention in the schedule's zone: the dry run predicts exactly
// what the check then deletes, and what it keeps survives with its file.
func TestCalendarRetentionDeletesWhatTheDryRunShows(t *testing.T) {
	t.Parallel()
	f := scheduleSetup(t)
	ctx := context.Background()
	f.mu.Lock()
	f.now = time.Date(2026, 1, 6, 4, 0, 0, 0, time.UTC) // 12:00 in Shanghai, a Tuesday
	f.mu.Unlock()
	sch := f.create(t, export.ScheduleInput{Name: ptr("shanghai"), Cron: ptr("0 3 * * *"), Timezone: ptr("Asia/Shanghai"),
		Retention: &export.RetentionInput{KeepLast: ptr(1), KeepDaily: ptr(2), KeepWeekly: ptr(2)}})
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) time.Duration {
		ts, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return f.clock().Sub(ts)
	}
	// Shanghai times. Kept: the newest (6 Jan: daily, and weekly 2026-W02,
	// which starts on Monday 5 Jan), 5 Jan 07:30 (the second daily) and
	// 4 Jan 23:00 (a Sunday: the newest of 2026-W01, the second weekly).
	times := []string{"2026-01-06 03:00", "2026-01-05 07:30", "2026-01-05 03:00", "2026-01-04 23:00", "2026-01-04 03:00", "2025-12-28 03:00"}
	want := map[string]bool{times[0]: true, times[1]: true, times[3]: true}
	ids := map[string]string{}
	for _, ts := range times {
		ids[f.succeeded(t, sch, at(ts)).ID] = ts
	}

	plan, err := f.schedules.PlanRetention(ctx, export.AdminToken(), sch.ID, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kept != 3 || plan.Dropped != 3 || len(plan.Backups) != 6 {
		t.Fatalf("plan kept %d dropped %d of %d", plan.Kept, plan.Dropped, len(plan.Backups))
	}
	for _, b := range plan.Backups {
		if b.Keep != want[ids[b.JobID]] {
			t.Errorf("plan: %s keep %v (%+v)", ids[b.JobID], b.Keep, b.KeptBy)
		}
	}
	if _, err := f.schedules.PlanRetention(ctx, export.Principal{UserID: 7, KeyID: 9}, sch.ID, func(string) string { return "" }); err == nil {
		t.Fatal("a user read the retention plan")
	}

	f.runCheck(t, sch.ID)
	for _, b := range plan.Backups {
		got, err := f.store.Job(ctx, b.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if kept := got.Status == export.StatusSucceeded; kept != b.Keep || kept != f.fileExists(got.StorageKey) {
			t.Errorf("%s: status %s, file there %v; the dry run said keep %v", ids[b.JobID], got.Status, f.fileExists(got.StorageKey), b.Keep)
		}
	}
}

// fakeDeliveryQueue stands in for the delivery tasks: the deliveries are
// what Emit records in PostgreSQL.
type fakeDeliveryQueue struct{}

func (fakeDeliveryQueue) EnqueueDelivery(context.Context, string, int) error { return nil }

// plainOwners says every endpoint owner is an active user, the admin
// token an administrator.
type plainOwners struct{}

func (plainOwners) OwnerStates(_ context.Context, ids []int64) (map[int64]export.OwnerState, error) {
	out := map[int64]export.OwnerState{}
	for _, id := range ids {
		out[id] = export.OwnerState{Admin: id == export.AdminTokenUserID}
	}
	return out, nil
}

// An overdue schedule raises one backup.overdue per stretch through the
// webhook dispatcher, to admin endpoints; a success ends the stretch.
func TestOverdueRaisesOneWebhookEvent(t *testing.T) {
	t.Parallel()
	f := scheduleSetup(t)
	ctx := context.Background()
	n := 0
	f.schedules.Overdue = &webhook.Dispatcher{Store: f.store, Queue: fakeDeliveryQueue{}, Owners: plainOwners{}, Log: f.schedules.Log, Now: f.clock,
		NewID: func() string { n++; return fmt.Sprintf("msg_%d", n) }, PublicURL: "https://x.example"}
	for _, ep := range []*export.WebhookEndpoint{
		{ID: "whk_admin", UserID: -1, Admin: true, URL: "https://a.example/h", Events: []string{export.EventBackupOverdue}, Enabled: true, Secret: export.NewWebhookSecret()},
		{ID: "whk_user", UserID: 5, URL: "https://u.example/h", Events: export.EventTypes(), Enabled: true, Secret: export.NewWebhookSecret()},
	} {
		ep.CreatedAt, ep.UpdatedAt = f.now, f.now
		if _, err := f.store.CreateWebhook(ctx, ep, 10); err != nil {
			t.Fatal(err)
		}
	}
	sch := f.create(t, export.ScheduleInput{Name: ptr("every10"), Cron: ptr("@every 10s")})
	advance := func(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }
	deliveries := func() []*export.WebhookDelivery {
		t.Helper()
		var out []*export.WebhookDelivery
		for _, id := range []string{"whk_admin", "whk_user"} {
			page, err := f.store.WebhookDeliveries(ctx, id, "", 50)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Deliveries...)
		}
		return out
	}

	advance(15 * time.Second)
	f.runCheck(t, "")
	if d := deliveries(); len(d) != 0 {
		t.Fatalf("raised before twice the interval: %d", len(d))
	}
	advance(10 * time.Second)
	for range 3 {
		f.runCheck(t, "")
		advance(5 * time.Second)
	}
	d := deliveries()
	if len(d) != 1 || d[0].EndpointID != "whk_admin" || d[0].EventType != export.EventBackupOverdue {
		t.Fatalf("deliveries %+v", d)
	}
	var ev struct {
		Type string
		Data webhook.OverdueData
	}
	if err := json.Unmarshal(d[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "backup.overdue" || ev.Data.ScheduleID != sch.ID || ev.Data.ScheduleName != "every10" ||
		ev.Data.IntervalSeconds != 10 || ev.Data.LastSuccessAt != nil || ev.Data.Links.Self != "https://x.example/api/v1/schedules/"+sch.ID {
		t.Fatalf("event %s", d[0].Payload)
	}
	got, _ := f.store.Schedule(ctx, sch.ID)
	if got.OverdueSince == nil {
		t.Fatal("overdue_since unset")
	}

	// A backup succeeds: the stretch ends, and the next one raises again.
	f.succeeded(t, sch, 0)
	f.runCheck(t, sch.ID)
	if got, _ := f.store.Schedule(ctx, sch.ID); got.OverdueSince != nil {
		t.Fatalf("still overdue after a success: %v", got.OverdueSince)
	}
	advance(21 * time.Second)
	f.runCheck(t, "")
	if d := deliveries(); len(d) != 2 {
		t.Fatalf("second stretch: %d deliveries in all", len(d))
	}
}

// Ticks create one job per slot whichever scheduler's tick arrives; a
// catch-up tick names its slot and is queued once.
func TestTicksAndCatchUp(t *testing.T) {
	t.Parallel()
	f := scheduleSetup(t)
	ctx := context.Background()
	tick := &ScheduleTickHandler{Schedules: f.schedules, Log: f.schedules.Log}
	f.now = time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	sch := f.create(t, export.ScheduleInput{Name: ptr("t"), Cron: ptr("@every 10s")})
	f.now = f.now.Add(10*time.Second + 300*time.Millisecond)
	for range 3 {
		if err := tick.ProcessTask(ctx, NewScheduleTickTask(sch.ID, nil)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := f.store.Jobs(ctx, export.JobFilter{ScheduleID: sch.ID, Limit: 10})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != export.SlotJobID(sch.ID, time.Date(2026, 1, 29, 10, 0, 10, 0, time.UTC)) {
		t.Fatalf("jobs %+v (%v)", page.Jobs, err)
	}
	if err := tick.ProcessTask(ctx, NewScheduleTickTask("sch_gone", nil)); err != nil {
		t.Fatalf("a deleted schedule's tick: %v", err)
	}

	// Every scheduler was down for a minute: the provider of each process
	// coming back queues the latest missed slot's tick, once.
	f.now = f.now.Add(time.Minute)
	p := &ScheduleProvider{Schedules: f.schedules, Store: f.store, Client: f.client, CheckEvery: time.Minute,
		Ctx: ctx, Log: f.schedules.Log}
	for range 3 {
		configs, err := p.GetConfigs()
		if err != nil {
			t.Fatal(err)
		}
		if len(configs) != 2 || configs[1].Cronspec != "@every 10s" || configs[0].Task.Type() != TypeScheduleCheck {
			t.Fatalf("configs %+v", configs)
		}
	}
	pending, err := f.inspector.ListPendingTasks(QueueSchedules)
	if err != nil || len(pending) != 1 {
		t.Fatalf("%d catch-up ticks queued (%v)", len(pending), err)
	}
	if err := tick.ProcessTask(ctx, asynq.NewTask(pending[0].Type, pending[0].Payload)); err != nil {
		t.Fatal(err)
	}
	missed := time.Date(2026, 1, 29, 10, 1, 10, 0, time.UTC)
	if _, err := f.store.Job(ctx, export.SlotJobID(sch.ID, missed)); err != nil {
		t.Fatalf("missed slot %v not run: %v", missed, err)
	}
	if page, _ := f.store.Jobs(ctx, export.JobFilter{ScheduleID: sch.ID, Limit: 10}); len(page.Jobs) != 2 {
		t.Fatalf("%d jobs: only the latest missed slot runs", len(page.Jobs))
	}
}

// A scheduled backup that succeeds keeps its file until its schedule's
// retention drops it (no ARTIFACT_RETENTION expiry), and its schedule is
// checked at once.
func TestScheduledJobSucceedsWithoutExpiry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	slot := time.Now().UTC().Truncate(time.Second)
	j := &export.Job{ID: export.SlotJobID("sch_X", slot), Type: export.TypeProbeLogs, Format: export.FormatText,
		Params: []byte(`{}`), UserID: -1, KeyID: -1, ScheduleID: "sch_X", RequestHash: "h", CreatedAt: slot, UpdatedAt: slot}
	if _, err := f.store.CreateScheduledJob(ctx, j, slot); err != nil {
		t.Fatal(err)
	}
	f.runner.Notify = &ScheduleHook{Queue: f.queue, Log: f.runner.Log}
	if err := f.runner.Run(ctx, task(j.ID), lines(1, 0)); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusSucceeded || !got.Result.ExpiresAt.IsZero() {
		t.Fatalf("job %s, expires %v", got.Status, got.Result.ExpiresAt)
	}
	if expired, _ := f.store.ExpiredArtifacts(ctx, 10); len(expired) != 0 {
		t.Fatal("a scheduled backup is up for expiry")
	}
	pending, err := f.queue.Inspector.ListPendingTasks(QueueSchedules)
	if err != nil || len(pending) != 1 || pending[0].Type != TypeScheduleCheck || !strings.Contains(string(pending[0].Payload), "sch_X") {
		t.Fatalf("check not queued: %v (%v)", pending, err)
	}
}

func ptr[T any](v T) *T { return &v }
