package export

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// Windows are the period before the slot's, in the schedule's zone: across
// a daylight-saving change, an ISO week starting on Monday, a year's turn.
func TestResolveWindow(t *testing.T) {
	t.Parallel()
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	sh, ny, kol := zone("Asia/Shanghai"), zone("America/New_York"), zone("Asia/Kolkata")
	for _, c := range []struct {
		window     string
		slot       time.Time
		loc        *time.Location
		start, end string
	}{
		// 01:00 on 1 January in Shanghai is 17:00 UTC on 31 December.
		{WindowPreviousMonth, time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC), sh, "2026-11-30T16:00:00Z", "2026-12-31T16:00:00Z"},
		{WindowPreviousMonth, time.Date(2026, 3, 1, 1, 0, 0, 0, sh), sh, "2026-01-31T16:00:00Z", "2026-02-28T16:00:00Z"},
		{WindowPreviousDay, time.Date(2026, 1, 29, 0, 5, 0, 0, sh), sh, "2026-01-27T16:00:00Z", "2026-01-28T16:00:00Z"},
		// New York's day before the spring change has 24 hours, the day of it 23.
		{WindowPreviousDay, time.Date(2026, 3, 9, 1, 0, 0, 0, ny), ny, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"},
		// Thursday 29 January 2026: the week before is Monday 19 to Monday 26.
		{WindowPreviousWeek, time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC), time.UTC, "2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z"},
		// A Monday slot: the whole week before it.
		{WindowPreviousWeek, time.Date(2026, 1, 26, 0, 0, 0, 0, time.UTC), time.UTC, "2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z"},
		// A Sunday slot: the week before its own (ISO weeks end on Sunday).
		{WindowPreviousWeek, time.Date(2026, 2, 1, 23, 0, 0, 0, time.UTC), time.UTC, "2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z"},
		{WindowPreviousHour, time.Date(2026, 1, 29, 10, 5, 0, 0, time.UTC), time.UTC, "2026-01-29T09:00:00Z", "2026-01-29T10:00:00Z"},
		// Kolkata's hours start at half past in UTC.
		{WindowPreviousHour, time.Date(2026, 1, 29, 10, 5, 0, 0, time.UTC), kol, "2026-01-29T08:30:00Z", "2026-01-29T09:30:00Z"},
	} {
		start, end, ok := ResolveWindow(c.window, c.slot, c.loc)
		if !ok || start.Format(time.RFC3339) != c.start || end.Format(time.RFC3339) != c.end {
			t.Errorf("%s at %s in %s: [%s, %s), want [%s, %s)", c.window, c.slot, c.loc, start.Format(time.RFC3339), end.Format(time.RFC3339), c.start, c.end)
		}
	}
	if _, _, ok := ResolveWindow("yesterday", time.Now(), time.UTC); ok {
		t.Error("an unknown window resolved")
	}
}

// A template schedule: validated for its owner, each slot's params filled
// with its window and forced to the owner's rows.
func TestTemplateScheduleSlots(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 27, 0, 0, 0, 0, time.UTC)
	s, st, q := newTestSchedules(&now)
	s.Registry = NewRegistry(UsageLogSpec(), ProbeLogSpec())
	s.MaxPerUser = 1
	s.Owners = ownersFunc(func(_ context.Context, u, k int64) (Principal, error) { return Principal{UserID: u, KeyID: k}, nil })
	ctx := context.Background()
	user := Principal{UserID: 5, KeyID: 9}
	job := func(typ string, params string) *ScheduleJob {
		return &ScheduleJob{Type: Type(typ), Params: json.RawMessage(params)}
	}
	for name, c := range map[string]struct {
		in    ScheduleInput
		field string
	}{
		"unknown window":     {ScheduleInput{Job: job("usage_logs", `{}`), Window: ptr("last_fortnight")}, "window"},
		"window and start":   {ScheduleInput{Job: job("usage_logs", `{"start_time":"2026-01-01T00:00:00Z"}`), Window: ptr("previous_day")}, "job.params.start_time"},
		"bad param":          {ScheduleInput{Job: job("usage_logs", `{"status_code":999}`)}, "job.params.status_code"},
		"bad format":         {ScheduleInput{Job: &ScheduleJob{Type: TypeUsageLogs, Format: "pdf"}}, "job.format"},
		"unschedulable type": {ScheduleInput{Job: job("session_request", `{}`)}, "job.type"},
		"mode on usage":      {ScheduleInput{Job: job("usage_logs", `{}`), Mode: ptr("full")}, "mode"},
		"feed of probes":     {ScheduleInput{Job: job("probe_logs", `{}`), Window: ptr("since_last")}, "window"},
	} {
		c.in.Name, c.in.Cron = ptr("x"), ptr("0 1 * * *")
		_, err := s.Create(ctx, AdminToken(), c.in)
		if e, ok := err.(*Error); !ok || e.Fields[c.field] == "" {
			t.Errorf("%s: %v, want a 400 naming %s", name, err, c.field)
		}
	}
	if _, err := s.Create(ctx, user, ScheduleInput{Name: ptr("p"), Cron: ptr("0 1 * * *"), Job: job("probe_logs", `{}`)}); KindOf(err) != KindForbidden {
		t.Fatalf("user's probe schedule: %v", err)
	}
	sch, err := s.Create(ctx, user, ScheduleInput{Name: ptr("daily"), Cron: ptr("0 1 * * *"), Timezone: ptr("Asia/Shanghai"),
		Job: job("usage_logs", `{"user_id": 1}`), Window: ptr("previous_day")})
	if err != nil {
		t.Fatal(err)
	}
	if sch.OwnerUserID != 5 || sch.Mode != "" || sch.Job.Format != FormatCSV {
		t.Fatalf("schedule %+v", sch)
	}
	st.count = 1
	if _, err := s.Create(ctx, user, ScheduleInput{Name: ptr("more"), Cron: ptr("0 1 * * *"), Job: job("usage_logs", `{}`)}); KindOf(err) != KindConflict {
		t.Fatalf("over the cap: %v", err)
	}
	// A slot caught up a day late still exports the day before its own.
	slot := time.Date(2026, 1, 27, 17, 0, 0, 0, time.UTC) // 01:00 on the 28th in Shanghai
	now = slot.Add(24 * time.Hour)
	j, created, err := s.RunSlot(ctx, sch.ID, &slot)
	if err != nil || !created {
		t.Fatalf("slot: %v %v", created, err)
	}
	var p UsageLogParams
	if err := json.Unmarshal(j.Params, &p); err != nil {
		t.Fatal(err)
	}
	if j.UserID != 5 || j.KeyID != 9 || *p.UserID != 5 || p.StartTime.Format(time.RFC3339) != "2026-01-26T16:00:00Z" || p.EndTime.Format(time.RFC3339) != "2026-01-27T16:00:00Z" {
		t.Fatalf("slot job %+v params %s", j, j.Params)
	}
	if len(q.queued) != 1 || q.queued[0] != j.ID {
		t.Fatalf("queued %v", q.queued)
	}
}

type ownersFunc func(ctx context.Context, userID, keyID int64) (Principal, error)

func (f ownersFunc) ScheduleOwner(ctx context.Context, userID, keyID int64) (Principal, error) {
	return f(ctx, userID, keyID)
}
