package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
)

// anySchedule is the part of a schedule of any type the tests read.
type anySchedule struct {
	ID  string `json:"id"`
	Job struct {
		Type   string          `json:"type"`
		Format string          `json:"format"`
		Params json.RawMessage `json:"params"`
	} `json:"job"`
	Window         string     `json:"window"`
	OwnerUserID    int64      `json:"owner_user_id"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason"`
	NextRunAt      *time.Time `json:"next_run_at"`
}

// A user schedules an export of their own usage: each slot's job exports the
// window before its slot, only the user's rows whatever the template asks,
// and the schedule's retention keeps the newest files. Users see only their
// own schedules and are capped; once the user's key is disabled, the next
// slot's job fails saying so and the schedule is disabled with the reason.
func TestScheduleUsageLogsOfAUser(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules(), withEnv("SCHEDULES_PER_USER", "2"), withPrivateWebhooks())
	s.start("serve")
	// Nothing listens there: the deliveries are recorded all the same.
	userHook := s.createHook(seed.UserKey, map[string]any{"url": "http://127.0.0.1:9/user-hook"})
	adminHook := s.createHook(adminToken, map[string]any{"url": "http://127.0.0.1:9/admin-hook"})

	var me struct {
		UserID int64 `json:"user_id"`
	}
	s.do("GET", "/api/v1/me", seed.UserKey, nil).json(t, &me)
	body := map[string]any{"name": "hourly", "cron": "@every 2s", "timezone": "Asia/Kolkata",
		"job":       map[string]any{"type": "usage_logs", "format": "csv", "params": map[string]any{"user_id": 1, "header_lang": "en"}},
		"window":    "previous_hour",
		"retention": map[string]any{"keep_last": 2}}
	r := s.do("POST", "/api/v1/schedules", seed.UserKey, body)
	if r.status != http.StatusCreated {
		t.Fatalf("user's usage schedule: %d %s", r.status, r.body)
	}
	var sc anySchedule
	r.json(t, &sc)
	if sc.OwnerUserID != me.UserID || sc.Job.Type != "usage_logs" || sc.Window != "previous_hour" || !sc.Enabled {
		t.Fatalf("schedule %+v", sc)
	}

	// Who may do what.
	probe := map[string]any{"name": "probes", "cron": "0 * * * *", "job": map[string]any{"type": "probe_logs"}}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, probe); r.status != http.StatusForbidden {
		t.Fatalf("user's probe_logs schedule: %d %s", r.status, r.body)
	}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, map[string]any{"name": "backup", "cron": "0 3 * * *"}); r.status != http.StatusForbidden {
		t.Fatalf("user's backup schedule: %d %s", r.status, r.body)
	}
	bad := map[string]any{"name": "bad", "cron": "0 1 * * *", "job": map[string]any{"type": "usage_logs",
		"params": map[string]any{"start_time": "2026-01-01T00:00:00Z"}}, "window": "previous_day"}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, bad); r.status != http.StatusBadRequest {
		t.Fatalf("window and start_time: %d %s", r.status, r.body)
	} else if _, fields := r.errorCode(t); fields["job.params.start_time"] == "" {
		t.Fatalf("window and start_time: %s", r.body)
	}
	second := map[string]any{"name": "daily", "cron": "0 1 * * *", "job": map[string]any{"type": "usage_logs", "format": "xlsx"},
		"window": "previous_day", "enabled": false}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, second); r.status != http.StatusCreated {
		t.Fatalf("second schedule: %d %s", r.status, r.body)
	}
	if r := s.do("POST", "/api/v1/schedules", seed.UserKey, second); r.status != http.StatusConflict {
		t.Fatalf("third schedule over SCHEDULES_PER_USER=2: %d %s", r.status, r.body)
	} else if code, _ := r.errorCode(t); code != "too_many_schedules" {
		t.Fatalf("third schedule: %s", r.body)
	}
	if r := s.do("GET", "/api/v1/schedules/"+sc.ID, seed.FutureKey, nil); r.status != http.StatusNotFound {
		t.Fatalf("another user reads the schedule: %d", r.status)
	}
	var page struct{ Data []anySchedule }
	s.do("GET", "/api/v1/schedules", seed.FutureKey, nil).json(t, &page)
	if len(page.Data) != 0 {
		t.Fatalf("another user lists %d schedules", len(page.Data))
	}
	s.do("GET", "/api/v1/schedules", seed.UserKey, nil).json(t, &page)
	if len(page.Data) != 2 {
		t.Fatalf("the user lists %d schedules, want 2", len(page.Data))
	}

	// The example of the manual: a monthly workbook, next at 01:00 on the
	// 1st in Shanghai.
	monthly := s.do("POST", "/api/v1/schedules", adminToken, map[string]any{"name": "monthly", "cron": "0 1 1 * *",
		"timezone": "Asia/Shanghai", "job": map[string]any{"type": "usage_logs", "format": "xlsx", "params": map[string]any{}},
		"window": "previous_month"})
	var m anySchedule
	monthly.json(t, &m)
	if monthly.status != http.StatusCreated || m.NextRunAt == nil || m.NextRunAt.In(shanghai(t)).Format("02 15:04") != "01 01:00" {
		t.Fatalf("monthly: %d %s", monthly.status, monthly.body)
	}

	// Slots run as the user, over the hour before each slot (Kolkata's
	// hours start at :30 UTC), and the retention keeps two files.
	until(t, 60*time.Second, "four succeeded slots", func() bool {
		n := 0
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.Status == "succeeded" || j.Status == "expired" {
				n++
			}
		}
		return n >= 4
	})
	for _, j := range s.scheduleJobs(sc.ID) {
		var p struct {
			UserID    int64     `json:"user_id"`
			StartTime time.Time `json:"start_time"`
			EndTime   time.Time `json:"end_time"`
		}
		if err := json.Unmarshal(j.Params, &p); err != nil {
			t.Fatal(err)
		}
		end := j.slot.Add(-30 * time.Minute).Truncate(time.Hour).Add(30 * time.Minute)
		if j.UserID != me.UserID || p.UserID != me.UserID || !p.EndTime.Equal(end) || !p.StartTime.Equal(end.Add(-time.Hour)) {
			t.Fatalf("slot %s: job owner %d, params %s; want user %d, [%s, %s)", j.slot, j.UserID, j.Params, me.UserID, end.Add(-time.Hour), end)
		}
	}
	until(t, 30*time.Second, "retention down to two files", func() bool {
		kept := 0
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.Status == "succeeded" {
				kept++
			}
		}
		return kept <= 2
	})
	last := s.scheduleJobs(sc.ID)
	for i := len(last) - 1; i >= 0; i-- {
		if last[i].Status == "succeeded" {
			file, _, _ := s.download(seed.UserKey, last[i].ID)
			if !bytes.HasPrefix(bytes.TrimPrefix(file, []byte("\xef\xbb\xbf")), []byte("Time,")) {
				t.Fatalf("scheduled file: %.200q", file)
			}
			break
		}
	}

	// Each run is announced to the user's endpoint with its download link.
	announced := func(token, hook, event, jobID string) bool {
		var page struct {
			Data []struct {
				EventType string `json:"event_type"`
				Payload   struct {
					Data struct {
						JobID string `json:"job_id"`
						Links struct {
							Download string `json:"download"`
						} `json:"links"`
					} `json:"data"`
				} `json:"payload"`
			} `json:"data"`
		}
		s.do("GET", "/api/v1/webhooks/"+hook+"/deliveries?limit=200", token, nil).json(t, &page)
		for _, d := range page.Data {
			if d.EventType == event && d.Payload.Data.JobID == jobID &&
				(event != "export.succeeded" || strings.HasSuffix(d.Payload.Data.Links.Download, "/api/v1/exports/"+jobID+"/download")) {
				return true
			}
		}
		return false
	}
	for _, j := range s.scheduleJobs(sc.ID) {
		if j.Status == "succeeded" || j.Status == "expired" {
			until(t, 30*time.Second, "export.succeeded of "+j.ID, func() bool { return announced(seed.UserKey, userHook.ID, "export.succeeded", j.ID) })
		}
	}

	// The key is disabled in the hub: the next slot fails and disables the
	// schedule, saying why.
	s.exec(`UPDATE keys SET is_enabled = false WHERE key = $1`, seed.UserKey)
	var failed scheduledJob
	until(t, 30*time.Second, "a slot failed for the disabled key", func() bool {
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.Status == "failed" {
				failed = j
				return true
			}
		}
		return false
	})
	full := s.get(adminToken, failed.ID)
	if full.Error == nil || full.Error.Code != "schedule_owner_inactive" || !strings.Contains(full.Error.Message, "is disabled") {
		t.Fatalf("failed slot: %+v", full.Error)
	}
	until(t, 30*time.Second, "export.failed of "+failed.ID, func() bool { return announced(adminToken, adminHook.ID, "export.failed", failed.ID) })
	var after anySchedule
	s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil).json(t, &after)
	if after.Enabled || !strings.Contains(after.DisabledReason, "is disabled") {
		t.Fatalf("schedule after the key was disabled: %+v", after)
	}

	// The key enabled again, the user enables the schedule: the reason is
	// gone and the next slot runs.
	s.exec(`UPDATE keys SET is_enabled = true WHERE key = $1`, seed.UserKey)
	r = s.do("PATCH", "/api/v1/schedules/"+sc.ID, seed.UserKey, map[string]any{"enabled": true})
	var again anySchedule
	r.json(t, &again)
	if r.status != http.StatusOK || !again.Enabled || again.DisabledReason != "" {
		t.Fatalf("enabled again: %d %s", r.status, r.body)
	}
	until(t, 30*time.Second, "a slot succeeded after the schedule was enabled again", func() bool {
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.Status == "succeeded" && j.slot.After(failed.slot) {
				return true
			}
		}
		return false
	})
}

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The CLI creates, lists, pauses, resumes and deletes schedules of any type.
func TestScheduleCLI(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	cli := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		env := map[string]string{"HUBEXPORT_SERVER": s.base, "HUBEXPORT_TOKEN": adminToken}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if code := run(append([]string{"schedule"}, args...), lookup, &out, &errb); code != want {
			t.Fatalf("hubexport schedule %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	out := cli(0, "create", "usage-logs", "--name", "monthly", "--cron", "0 1 1 * *", "--timezone", "Asia/Shanghai",
		"--window", "previous_month", "--format", "xlsx", "--header-lang", "en", "--json")
	var sc anySchedule
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	var params map[string]any
	_ = json.Unmarshal(sc.Job.Params, &params)
	if sc.Job.Type != "usage_logs" || sc.Job.Format != "xlsx" || sc.Window != "previous_month" || params["header_lang"] != "en" {
		t.Fatalf("created %+v (params %s)", sc, sc.Job.Params)
	}
	if list := cli(0, "list"); !strings.Contains(list, sc.ID) || !strings.Contains(list, "usage_logs/xlsx") || !strings.Contains(list, "previous_month") {
		t.Fatalf("list:\n%s", list)
	}
	if out := cli(0, "pause", sc.ID); !strings.Contains(out, "paused") {
		t.Fatalf("pause: %s", out)
	}
	if out := cli(0, "resume", sc.ID); !strings.Contains(out, "enabled") {
		t.Fatalf("resume: %s", out)
	}
	if out := cli(1, "create", "usage-logs", "--cron", "0 1 * * *", "--window", "yesterday"); !strings.Contains(out, "window") {
		t.Fatalf("bad window: %s", out)
	}
	if out := cli(2, "create", "usage-logs", "--window", "previous_day"); !strings.Contains(out, "--cron") {
		t.Fatalf("no cron: %s", out)
	}
	cli(0, "delete", sc.ID)
	if r := s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("deleted schedule: %d", r.status)
	}
}
