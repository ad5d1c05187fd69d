package export

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

type verifiedEvent struct {
	schedule, drill string
	passed          bool
}

type recordVerified struct{ events []verifiedEvent }

func (r *recordVerified) BackupVerified(_ context.Context, s *Schedule, j *Job, passed bool) error {
	r.events = append(r.events, verifiedEvent{s.ID, j.ID, passed})
	return nil
}

func TestVerifyPolicyJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, out string
		due     []bool // Due(1), Due(2), Due(3)
	}{
		{`"none"`, `"none"`, []bool{false, false, false}},
		{`"every"`, `"every"`, []bool{true, true, true}},
		{`{"every_nth": 3}`, `{"every_nth":3}`, []bool{false, false, true}},
		{`{"every_nth": 1}`, `"every"`, []bool{true, true, true}},
	} {
		var v VerifyPolicy
		if err := json.Unmarshal([]byte(c.in), &v); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if b, _ := json.Marshal(v); string(b) != c.out {
			t.Errorf("%s reads back as %s, want %s", c.in, b, c.out)
		}
		for i, want := range c.due {
			if v.Due(i+1) != want {
				t.Errorf("%s: Due(%d) = %v", c.in, i+1, !want)
			}
		}
	}
	for _, bad := range []string{`"sometimes"`, `{"every_nth": 0}`, `{"every_nth": 1001}`, `{"every": 2}`, `3`, `true`} {
		var v VerifyPolicy
		err := json.Unmarshal([]byte(bad), &v)
		if e, ok := errors.AsType[*Error](err); !ok || e.Fields["verify"] == "" {
			t.Errorf("%s: err %v, want one naming verify", bad, err)
		}
	}
}

// every_nth 2 queues a drill after every second backup; the drill's outcome
// is recorded and announced; a failed drill makes the schedule unhealthy
// and overdue until a drill passes.
func TestScheduleDrills(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, st, q := newTestSchedules(&now)
	ev := &recordVerified{}
	s.Verified = ev
	var overdue []string
	s.Overdue = overdueFunc(func(sch *Schedule) { overdue = append(overdue, sch.ID) })
	var policy VerifyPolicy
	_ = json.Unmarshal([]byte(`{"every_nth": 2}`), &policy)
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("n"), Cron: ptr("@every 1h"), Verify: &policy})
	if err != nil {
		t.Fatal(err)
	}
	backup := func(i int) *Job {
		f := now.Add(time.Duration(i) * time.Minute)
		return &Job{ID: "exp_" + string(rune('A'+i)), Type: TypeDatabaseBackup, Status: StatusSucceeded, ScheduleID: sch.ID, FinishedAt: &f}
	}
	if err := s.AfterBackup(ctx, backup(1)); err != nil || len(q.queued) != 0 {
		t.Fatalf("first backup: %v, queued %v", err, q.queued)
	}
	b2 := backup(2)
	if err := s.AfterBackup(ctx, b2); err != nil || len(q.queued) != 1 || q.queued[0] != DrillJobID(b2) {
		t.Fatalf("second backup: %v, queued %v", err, q.queued)
	}
	drill := st.jobs[q.queued[0]]
	var p VerifyParams
	if err := json.Unmarshal(drill.Params, &p); err != nil || p.BackupJobID != b2.ID || drill.Type != TypeBackupVerify {
		t.Fatalf("drill %+v", drill)
	}
	// The same backup announced again queues nothing more.
	_ = s.AfterBackup(ctx, b2)
	if len(q.queued) != 1 {
		t.Fatalf("queued %v", q.queued)
	}

	drill.Status = StatusFailed
	got, err := s.DrillEnded(ctx, drill)
	if err != nil || got == nil || got.Healthy || got.LastVerify == nil || got.LastVerify.Passed {
		t.Fatalf("failed drill: %v %+v", err, got)
	}
	if err := s.CheckFreshness(ctx, st.schedules[sch.ID]); err != nil || len(overdue) != 1 {
		t.Fatalf("a failed drill must raise backup.overdue: %v %v", err, overdue)
	}
	// A later drill that passes makes it healthy again.
	b4 := backup(4)
	_ = s.AfterBackup(ctx, backup(3))
	_ = s.AfterBackup(ctx, b4)
	d2 := st.jobs[DrillJobID(b4)]
	d2.Status = StatusSucceeded
	got, err = s.DrillEnded(ctx, d2)
	if err != nil || !got.Healthy && got.OverdueSince == nil || got.LastVerifiedAt == nil {
		t.Fatalf("passing drill: %v %+v", err, got)
	}
	if err := s.CheckFreshness(ctx, st.schedules[sch.ID]); err != nil || st.schedules[sch.ID].OverdueSince != nil {
		t.Fatalf("still overdue after a passing drill: %v", err)
	}
	if want := []verifiedEvent{{sch.ID, drill.ID, false}, {sch.ID, d2.ID, true}}; len(ev.events) != 2 || ev.events[0] != want[0] || ev.events[1] != want[1] {
		t.Fatalf("events %+v, want %+v", ev.events, want)
	}
	// A manual drill, not queued by the schedule, records nothing.
	if got, err := s.DrillEnded(ctx, &Job{ID: "exp_manual", Type: TypeBackupVerify, Status: StatusFailed}); err != nil || got != nil {
		t.Fatalf("manual drill: %v %+v", err, got)
	}
}

type overdueFunc func(*Schedule)

func (f overdueFunc) BackupOverdue(_ context.Context, s *Schedule, _ time.Time, _ time.Duration) error {
	f(s)
	return nil
}
