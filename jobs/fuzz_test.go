package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// memSchedules keeps schedules in memory; the methods a create and an
// update do not call are left to the embedded nil interface.
type memSchedules struct {
	export.ScheduleStore
	schedules map[string]*export.Schedule
}

func (m *memSchedules) CreateSchedule(_ context.Context, s *export.Schedule) (*export.Schedule, error) {
	c := *s
	m.schedules[s.ID] = &c
	return &c, nil
}

func (m *memSchedules) Schedule(_ context.Context, id string) (*export.Schedule, error) {
	s, ok := m.schedules[id]
	if !ok {
		return nil, export.ErrScheduleNotFound
	}
	c := *s
	return &c, nil
}

func (m *memSchedules) UpdateSchedule(_ context.Context, s *export.Schedule) (*export.Schedule, error) {
	c := *s
	m.schedules[s.ID] = &c
	return &c, nil
}

func (m *memSchedules) Audit(context.Context, export.AuditEntry) error { return nil }

// scheduleFields are the fields a schedule's bad-input errors may name.
var scheduleFields = []string{"body", "name", "cron", "timezone", "mode", "enabled", "retention", "job", "window",
	"verify", "encrypt", "age_recipients"}

// FuzzScheduleInput feeds request bodies to POST /schedules' decoding and
// validation with the real cron parser. A refusal is a field error naming
// a schedule field; an accepted schedule has a clean name, a cron spec
// that fires, a retention within its bounds and fields PostgreSQL can
// store, and saving it again (PATCH with its own values) changes nothing.
func FuzzScheduleInput(f *testing.F) {
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s := &export.Schedules{
		Store:      &memSchedules{schedules: map[string]*export.Schedule{}},
		ParseCron:  ParseCron,
		AllowEvery: true,
		Registry:   export.NewRegistry(export.UsageLogSpec(), export.ProbeLogSpec()),
		NewID:      func() string { return "sch_fuzz" },
		Now:        func() time.Time { return now },
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx := context.Background()
	admin := export.AdminToken()
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in export.ScheduleInput
		if err := export.DecodeStrict(raw, &in, ""); err != nil {
			wantScheduleFieldError(t, err)
			return
		}
		sch, err := s.Create(ctx, admin, in)
		if err != nil {
			wantScheduleFieldError(t, err)
			return
		}
		if sch.Name == "" || sch.Name != strings.TrimSpace(sch.Name) || strings.ContainsFunc(sch.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted name %q", sch.Name)
		}
		if _, err := s.Timing(sch); err != nil {
			t.Fatalf("accepted cron %q in %q that does not parse again: %v", sch.Cron, sch.Timezone, err)
		}
		if sch.Enabled && sch.NextRunAt == nil {
			t.Fatalf("accepted enabled schedule %q in %q with no next run", sch.Cron, sch.Timezone)
		}
		r := sch.Retention
		if r.KeepLast < 1 || r.MaxAgeDays < 0 || r.KeepHourly < 0 || r.KeepDaily < 0 || r.KeepWeekly < 0 || r.KeepMonthly < 0 || r.KeepYearly < 0 {
			t.Fatalf("accepted retention %+v", r)
		}
		before, err := json.Marshal(sch)
		if err != nil {
			t.Fatalf("accepted schedule does not encode: %v", err)
		}
		for _, v := range []string{sch.Name, sch.Cron, sch.Timezone, sch.Mode} {
			if strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("accepted schedule %s holds a NUL character, which PostgreSQL cannot store", before)
			}
		}
		ri := export.RetentionInput{KeepLast: &r.KeepLast, KeepHourly: &r.KeepHourly, KeepDaily: &r.KeepDaily, KeepWeekly: &r.KeepWeekly,
			KeepMonthly: &r.KeepMonthly, KeepYearly: &r.KeepYearly, MaxAgeDays: &r.MaxAgeDays}
		same, err := s.Update(ctx, admin, sch.ID, export.ScheduleInput{Name: &sch.Name, Cron: &sch.Cron, Timezone: &sch.Timezone,
			Mode: &sch.Mode, Retention: &ri, Enabled: &sch.Enabled}, "")
		if err != nil {
			t.Fatalf("the accepted schedule %s is refused when saved again: %v", before, err)
		}
		if after, _ := json.Marshal(same); !bytes.Equal(before, after) {
			t.Fatalf("saving the schedule again changed it:\n before %s\n  after %s", before, after)
		}
	})
}

func wantScheduleFieldError(t *testing.T, err error) {
	t.Helper()
	var e *export.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *export.Error: the API would answer 500", err, err)
	}
	if e.Kind != export.KindInvalid || len(e.Fields) != 1 || e.Message == "" {
		t.Fatalf("error %v: kind %d, fields %v; want a bad-input error naming one field", err, e.Kind, e.Fields)
	}
	for field, msg := range e.Fields {
		// An unknown field's error names the field as sent.
		if strings.HasPrefix(msg, "unknown field") {
			continue
		}
		top, _, _ := strings.Cut(field, ".")
		known := false
		for _, f := range scheduleFields {
			known = known || top == f
		}
		if !known {
			t.Fatalf("error %v names %q, not a schedule field", err, field)
		}
	}
}
