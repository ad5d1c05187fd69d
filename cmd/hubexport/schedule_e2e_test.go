package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/seed"
)

// Tests create schedules with "@every Ns" (SCHEDULE_ALLOW_EVERY=true): the
// API otherwise takes 5-field specs only, whose shortest interval is a
// minute. @every slots are multiples of N since the Unix epoch, so every
// scheduler process agrees on them as it does on a cron spec's.
func withFastSchedules() stackOpt {
	return func(env map[string]string) {
		env["SCHEDULE_ALLOW_EVERY"] = "true"
		env["SCHEDULE_SYNC_INTERVAL"] = "1s"
		env["SCHEDULE_CHECK_INTERVAL"] = "1s"
	}
}

type schedule struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Cron      string `json:"cron"`
	Timezone  string `json:"timezone"`
	Mode      string `json:"mode"`
	Retention struct {
		KeepLast   int `json:"keep_last"`
		MaxAgeDays int `json:"max_age_days"`
	} `json:"retention"`
	Enabled      bool       `json:"enabled"`
	NextRunAt    *time.Time `json:"next_run_at"`
	LastSlotAt   *time.Time `json:"last_slot_at"`
	OverdueSince *time.Time `json:"overdue_since"`
}

func (s *stack) createSchedule(body map[string]any) schedule {
	s.t.Helper()
	r := s.do("POST", "/api/v1/schedules", adminToken, body)
	if r.status != http.StatusCreated {
		s.t.Fatalf("create schedule: status %d: %s", r.status, r.body)
	}
	var sc schedule
	r.json(s.t, &sc)
	if r.header.Get("Location") != "/api/v1/schedules/"+sc.ID {
		s.t.Fatalf("Location %q", r.header.Get("Location"))
	}
	return sc
}

func (s *stack) patchSchedule(id string, body map[string]any) schedule {
	s.t.Helper()
	r := s.do("PATCH", "/api/v1/schedules/"+id, adminToken, body)
	if r.status != http.StatusOK {
		s.t.Fatalf("patch schedule: status %d: %s", r.status, r.body)
	}
	var sc schedule
	r.json(s.t, &sc)
	return sc
}

// scheduledJob is a job of a schedule, with the slot its id carries.
type scheduledJob struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
	Params     json.RawMessage `json:"params"`
	UserID     int64           `json:"user_id"`
	ScheduleID string          `json:"schedule_id"`
	slot       time.Time
}

// scheduleJobs lists a schedule's jobs through the API, oldest slot first.
func (s *stack) scheduleJobs(id string) []scheduledJob {
	s.t.Helper()
	var out []scheduledJob
	cursor := ""
	for {
		r := s.do("GET", "/api/v1/exports?limit=200&schedule_id="+id+"&cursor="+cursor, adminToken, nil)
		if r.status != 200 {
			s.t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Data       []scheduledJob `json:"data"`
			NextCursor string         `json:"next_cursor"`
		}
		r.json(s.t, &page)
		for _, j := range page.Data {
			u, err := ulid.ParseStrict(strings.TrimPrefix(j.ID, "exp_"))
			if err != nil {
				s.t.Fatalf("job id %q is not exp_ and a ULID: %v", j.ID, err)
			}
			j.slot = ulid.Time(u.Time()).UTC()
			out = append(out, j)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.SortFunc(out, func(a, b scheduledJob) int { return a.slot.Compare(b.slot) })
	return out
}

// schedulerSpecs lists the cron specs scheduler processes have registered
// for schedule id, as they report them to Redis (asynq cron ls).
func (s *stack) schedulerSpecs(id string) []string {
	s.t.Helper()
	opt, err := asynq.ParseRedisURI(s.redis.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	entries, err := in.SchedulerEntries()
	if err != nil {
		s.t.Fatal(err)
	}
	var specs []string
	for _, e := range entries {
		if strings.Contains(string(e.Task.Payload()), id) {
			specs = append(specs, e.Spec)
		}
	}
	slices.Sort(specs)
	return specs
}

// checkSlots asserts that jobs (oldest first) are one per slot of an
// @every every schedule, on its grid, with no slot left out, and the
// schedule's own jobs.
func checkSlots(t *testing.T, sc schedule, jobs []scheduledJob, every time.Duration, mode string) {
	t.Helper()
	for i, j := range jobs {
		if j.slot.UnixMilli()%every.Milliseconds() != 0 {
			t.Errorf("job %s: slot %v is not on the %s grid", j.ID, j.slot, every)
		}
		if i > 0 && j.slot.Sub(jobs[i-1].slot) != every {
			t.Errorf("slots %v then %v: a duplicate or a gap", jobs[i-1].slot, j.slot)
		}
		if j.ID != export.SlotJobID(sc.ID, j.slot) || j.ScheduleID != sc.ID || j.Type != "database_backup" ||
			j.UserID != export.AdminTokenUserID || string(j.Params) != `{"mode":"`+mode+`"}` {
			t.Errorf("job %+v", j)
		}
	}
}

// Three scheduler processes over several slots make exactly one job per
// slot; an edit and a disable are picked up within the sync interval.
func TestScheduleThreeSchedulersOneJobPerSlot(t *testing.T) {
	t.Parallel()
	// No worker: the jobs stay queued, so what is counted is what the
	// schedulers made.
	s := newStack(t, withFastSchedules())
	s.start("api")
	for range 3 {
		s.start("scheduler")
	}
	sc := s.createSchedule(map[string]any{"name": "every2", "cron": "@every 2s", "mode": "exclude_logs",
		"retention": map[string]any{"keep_last": 100}})
	if sc.Timezone != "UTC" || !sc.Enabled || sc.Retention.KeepLast != 100 || sc.NextRunAt == nil {
		t.Fatalf("created %+v", sc)
	}
	until(t, 15*time.Second, "three schedulers register the schedule", func() bool {
		return slices.Equal(s.schedulerSpecs(sc.ID), []string{"@every 2s", "@every 2s", "@every 2s"})
	})
	until(t, 20*time.Second, "five slots", func() bool { return len(s.scheduleJobs(sc.ID)) >= 5 })
	jobs := s.scheduleJobs(sc.ID)
	checkSlots(t, sc, jobs, 2*time.Second, "exclude_logs")
	for _, j := range jobs {
		if j.Status != "queued" {
			t.Errorf("job %s is %s", j.ID, j.Status)
		}
	}

	// An edit: every scheduler re-registers within the sync interval, and
	// slots follow the new spec from then on.
	edited := time.Now()
	s.patchSchedule(sc.ID, map[string]any{"cron": "@every 3s", "mode": "ledger_only"})
	until(t, 5*time.Second, "the edit reaches every scheduler", func() bool {
		return slices.Equal(s.schedulerSpecs(sc.ID), []string{"@every 3s", "@every 3s", "@every 3s"})
	})
	var after []scheduledJob
	until(t, 20*time.Second, "four slots after the edit", func() bool {
		after = nil
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.slot.After(edited) {
				after = append(after, j)
			}
		}
		return len(after) >= 4
	})
	checkSlots(t, sc, after, 3*time.Second, "ledger_only")

	// A disable: the entries go within the sync interval, and no slot runs.
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	until(t, 5*time.Second, "the disable reaches every scheduler", func() bool { return len(s.schedulerSpecs(sc.ID)) == 0 })
	n := len(s.scheduleJobs(sc.ID))
	time.Sleep(4 * time.Second)
	if got := len(s.scheduleJobs(sc.ID)); got != n {
		t.Fatalf("%d jobs made after the disable", got-n)
	}
	if got := s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil); got.status != 200 || !strings.Contains(string(got.body), `"enabled":false`) {
		t.Fatalf("get: %d %s", got.status, got.body)
	}

	// Every change is audited; each job the schedulers made, once.
	entries, _ := s.audit("action=schedule.*")
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+":"+e.Outcome)
	}
	if !slices.Equal(actions, []string{"schedule.update:ok", "schedule.update:ok", "schedule.create:ok"}) {
		t.Fatalf("audit %v", actions)
	}
	created, _ := s.audit("action=export.create&actor=scheduler&limit=200")
	if total := len(s.scheduleJobs(sc.ID)); len(created) != total {
		t.Fatalf("%d export.create entries by the scheduler for %d jobs", len(created), total)
	}
}

// A slot missed while every scheduler was down runs once when one comes
// back: the latest only.
func TestScheduleCatchUpRunsTheLatestMissedSlot(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules())
	s.start("api")
	sc := s.createSchedule(map[string]any{"name": "every3", "cron": "@every 3s"})
	time.Sleep(7 * time.Second) // two or three slots pass with no scheduler
	back := time.Now()
	latestMissed := back.Truncate(3 * time.Second)
	p := s.start("scheduler")
	until(t, 10*time.Second, "the catch-up job", func() bool { return len(s.scheduleJobs(sc.ID)) > 0 })
	jobs := s.scheduleJobs(sc.ID)
	// The first job is the latest missed slot (or, on a slow start, the
	// slot after it); none of the earlier missed slots ran.
	if first := jobs[0].slot; !first.Equal(latestMissed) && !first.Equal(latestMissed.Add(3*time.Second)) {
		t.Fatalf("first job's slot %v; the latest slot missed before %v is %v", first, back, latestMissed)
	}
	if !strings.Contains(p.Logs(), `"msg":"schedule_catch_up"`) {
		t.Fatalf("no catch-up logged:\n%s", p.Logs())
	}
	got := s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil)
	var read schedule
	got.json(t, &read)
	if read.LastSlotAt == nil || read.LastSlotAt.Before(latestMissed) {
		t.Fatalf("last_slot_at %v", read.LastSlotAt)
	}
}

// A schedule whose backups cannot run (CCH holds the backup lock) raises
// one backup.overdue after twice its interval, signed like every delivery,
// and no more while the stretch lasts.
func TestScheduleOverdueRaisesOneEvent(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules(), withPrivateWebhooks(), withEnv("WORKER_CONCURRENCY", "16"))
	// CCH's web UI is restoring: every backup waits for the lock.
	if err := s.hubRedis().Set(t.Context(), lock.BackupKey, "1769680000000-e2e", 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	s.start("api")
	s.start("worker")
	s.start("scheduler")
	recv := newHookReceiver(t)
	h := s.createHook(adminToken, map[string]any{"url": recv.url(), "events": []string{"backup.overdue"}})
	recv.trust(h.Secret)

	created := time.Now()
	sc := s.createSchedule(map[string]any{"name": "stuck", "cron": "@every 2s"})
	got := recv.waitFor(1, 20*time.Second)
	if since := got[0].at.Sub(created); since < 4*time.Second {
		t.Fatalf("raised %s after creation, before twice the interval", since)
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			ScheduleID      string     `json:"schedule_id"`
			ScheduleName    string     `json:"schedule_name"`
			LastSuccessAt   *time.Time `json:"last_success_at"`
			IntervalSeconds int64      `json:"interval_seconds"`
			Links           struct {
				Self string `json:"self"`
			} `json:"links"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "backup.overdue" || ev.Data.ScheduleID != sc.ID || ev.Data.ScheduleName != "stuck" || ev.Data.LastSuccessAt != nil ||
		ev.Data.IntervalSeconds != 2 || ev.Data.Links.Self != s.base+"/api/v1/schedules/"+sc.ID {
		t.Fatalf("event %s", got[0].body)
	}
	// The stretch goes on for several more intervals and checks: no repeat.
	time.Sleep(6 * time.Second)
	if n := len(recv.requests()); n != 1 {
		t.Fatalf("%d backup.overdue events in one stretch", n)
	}
	r := s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil)
	var read schedule
	r.json(t, &read)
	if read.OverdueSince == nil {
		t.Fatalf("overdue_since unset: %s", r.body)
	}
	// The jobs are there, waiting for the lock.
	if len(s.scheduleJobs(sc.ID)) < 3 {
		t.Fatal("the schedule made too few jobs")
	}
}

// Bad input is a 400 naming the field; users may not touch schedules;
// @every needs the switch.
func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	good := func() map[string]any {
		return map[string]any{"name": "nightly", "cron": "0 3 * * *", "timezone": "Asia/Shanghai",
			"retention": map[string]any{"keep_last": 7, "max_age_days": 30}}
	}
	cases := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"bad cron", func(b map[string]any) { b["cron"] = "61 * * * *" }, "cron"},
		{"six fields", func(b map[string]any) { b["cron"] = "0 0 3 * * *" }, "cron"},
		{"@every without the switch", func(b map[string]any) { b["cron"] = "@every 2s" }, "cron"},
		{"unknown zone", func(b map[string]any) { b["timezone"] = "Asia/Atlantis" }, "timezone"},
		{"keep_last 0", func(b map[string]any) { b["retention"] = map[string]any{"keep_last": 0} }, "retention.keep_last"},
		{"max_age_days -1", func(b map[string]any) { b["retention"] = map[string]any{"max_age_days": -1} }, "retention.max_age_days"},
		{"keep_last not a number", func(b map[string]any) { b["retention"] = map[string]any{"keep_last": "7"} }, "retention.keep_last"},
		{"unknown mode", func(b map[string]any) { b["mode"] = "schema_only" }, "mode"},
		{"unknown field", func(b map[string]any) { b["owner"] = "me" }, "owner"},
		{"no name", func(b map[string]any) { delete(b, "name") }, "name"},
	}
	for _, c := range cases {
		body := good()
		c.edit(body)
		r := s.do("POST", "/api/v1/schedules", adminToken, body)
		code, fields := r.errorCode(t)
		if r.status != 400 || code != "invalid_request" || fields[c.field] == "" {
			t.Errorf("%s: %d %s, want a 400 naming %s", c.name, r.status, r.body, c.field)
		}
	}
	sc := s.createSchedule(good())
	if r := s.do("PATCH", "/api/v1/schedules/"+sc.ID, adminToken, map[string]any{"retention": map[string]any{"keep_last": 0}}); r.status != 400 {
		t.Errorf("patch keep_last 0: %d", r.status)
	}
	for _, q := range []string{"keep_daily=-1", "keep_weekly=x", "keep_last=0", "max_age_days=99999"} {
		r := s.do("GET", "/api/v1/schedules/"+sc.ID+"/retention?"+q, adminToken, nil)
		field, _, _ := strings.Cut(q, "=")
		if r.status != 400 || !strings.Contains(string(r.body), `"`+field+`"`) {
			t.Errorf("retention dry run ?%s: %d %s, want a 400 naming %s", q, r.status, r.body, field)
		}
	}
	if r := s.do("PATCH", "/api/v1/schedules/"+sc.ID, adminToken, map[string]any{"retention": map[string]any{"keep_monthly": -1}}); r.status != 400 ||
		!strings.Contains(string(r.body), "retention.keep_monthly") {
		t.Errorf("patch keep_monthly -1: %d %s", r.status, r.body)
	}
	// An administrator's schedule is not a user's to see; their list holds
	// only their own.
	for _, req := range [][2]string{{"GET", "/api/v1/schedules/" + sc.ID}, {"GET", "/api/v1/schedules/" + sc.ID + "/retention"},
		{"DELETE", "/api/v1/schedules/" + sc.ID}} {
		if r := s.do(req[0], req[1], seed.UserKey, nil); r.status != 404 {
			t.Errorf("user %s %s: %d", req[0], req[1], r.status)
		}
	}
	if r := s.do("GET", "/api/v1/schedules", seed.UserKey, nil); r.status != 200 || strings.Contains(string(r.body), sc.ID) {
		t.Errorf("user list: %d %s", r.status, r.body)
	}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, good()); r.status != 403 {
		t.Errorf("user create: %d", r.status)
	}
	if r := s.do("DELETE", "/api/v1/schedules/"+sc.ID, adminToken, nil); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil); r.status != 404 {
		t.Errorf("get after delete: %d", r.status)
	}
}

// Real backups on a schedule: after each success the retention keeps the
// newest keep_last, the older ones read expired and their files are gone;
// the schedule and /metrics show the last success.
func TestScheduleRetentionOfRealBackups(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules())
	s.start("serve")
	sc := s.createSchedule(map[string]any{"name": "every3", "cron": "@every 3s", "mode": "ledger_only",
		"retention": map[string]any{"keep_last": 2}})
	done := func() (succeeded, expired []scheduledJob) {
		for _, j := range s.scheduleJobs(sc.ID) {
			switch j.Status {
			case "succeeded":
				succeeded = append(succeeded, j)
			case "expired":
				expired = append(expired, j)
			}
		}
		return succeeded, expired
	}
	until(t, 90*time.Second, "four backups done", func() bool {
		ok, gone := done()
		return len(ok)+len(gone) >= 4
	})
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	// Let the backups already made finish, and the retention catch up.
	until(t, 60*time.Second, "every backup ended and the retention applied", func() bool {
		ok, gone := done()
		return len(ok)+len(gone) == len(s.scheduleJobs(sc.ID)) && len(ok) == 2
	})
	succeeded, expired := done()
	if len(expired) < 2 {
		t.Fatalf("%d expired", len(expired))
	}
	if !expired[len(expired)-1].slot.Before(succeeded[0].slot) {
		t.Fatalf("kept %v, expired %v: the newest two are not the ones kept", succeeded, expired)
	}
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	for _, j := range append(succeeded, expired...) {
		r := s.do("GET", "/api/v1/exports/"+j.ID, adminToken, nil)
		var full struct {
			Result struct {
				Filename  string    `json:"filename"`
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"result"`
		}
		r.json(t, &full)
		if !full.Result.ExpiresAt.IsZero() {
			t.Errorf("scheduled backup %s has an ARTIFACT_RETENTION expiry %v", j.ID, full.Result.ExpiresAt)
		}
		_, err := os.Stat(filepath.Join(dir, "backups", j.ID, full.Result.Filename))
		if kept := j.Status == "succeeded"; kept != (err == nil) {
			t.Errorf("backup %s (%s): file there: %v", j.ID, j.Status, err == nil)
		}
		if dl := s.do("GET", "/api/v1/exports/"+j.ID+"/download?redirect=false", adminToken, nil); (j.Status == "succeeded") != (dl.status == 200) {
			t.Errorf("download of %s (%s): %d", j.ID, j.Status, dl.status)
		}
	}
	deleted, _ := s.audit("action=schedule.retention_delete&limit=200")
	if len(deleted) != len(expired) {
		t.Fatalf("%d retention deletions audited for %d expired backups", len(deleted), len(expired))
	}
	// The dry run shows the policy as applied, and what a stricter one
	// would drop, deleting nothing.
	type plan struct {
		Kept, Dropped int
		Backups       []struct {
			JobID      string                          `json:"job_id"`
			Keep       bool                            `json:"keep"`
			DropReason string                          `json:"drop_reason"`
			KeptBy     []struct{ Rule, Period string } `json:"kept_by"`
		} `json:"backups"`
	}
	var now, stricter plan
	s.do("GET", "/api/v1/schedules/"+sc.ID+"/retention", adminToken, nil).json(t, &now)
	if now.Kept != 2 || now.Dropped != 0 {
		t.Fatalf("dry run of the applied policy: %+v", now)
	}
	s.do("GET", "/api/v1/schedules/"+sc.ID+"/retention?keep_last=1", adminToken, nil).json(t, &stricter)
	kept := map[string]bool{succeeded[0].ID: true, succeeded[1].ID: true}
	if stricter.Kept != 1 || stricter.Dropped != 1 || len(stricter.Backups) != 2 || !kept[stricter.Backups[0].JobID] || !kept[stricter.Backups[1].JobID] ||
		stricter.Backups[1].DropReason != "not_kept" || stricter.Backups[0].KeptBy[0].Rule != "newest" {
		t.Fatalf("dry run with keep_last=1: %+v (succeeded %v)", stricter, succeeded)
	}
	if _, ok := done(); len(ok) != 2 {
		t.Fatalf("the dry run deleted backups: %d left", len(ok))
	}
	var read struct {
		LastSuccessAt *time.Time `json:"last_success_at"`
		OverdueSince  *time.Time `json:"overdue_since"`
	}
	s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil).json(t, &read)
	if read.LastSuccessAt == nil || read.OverdueSince != nil {
		t.Fatalf("schedule after backups: %+v", read)
	}
	if m := s.do("GET", "/metrics", "", nil); !strings.Contains(string(m.body), `hubexport_last_successful_backup_timestamp_seconds{schedule="`+sc.ID+`"}`) {
		t.Fatal("no last-backup gauge for the schedule in /metrics")
	}
}
