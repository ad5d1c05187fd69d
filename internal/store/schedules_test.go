package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func newSchedule(id string, now time.Time) *export.Schedule {
	return &export.Schedule{ID: id, Name: "nightly", Cron: "0 3 * * *", Timezone: "UTC", Mode: "full",
		Retention: export.Retention{KeepLast: 3, MaxAgeDays: 30}, Enabled: true, ActiveSince: now, CreatedAt: now, UpdatedAt: now}
}

func scheduledJob(scheduleID string, slot time.Time) *export.Job {
	now := time.Now().UTC()
	return &export.Job{ID: export.SlotJobID(scheduleID, slot), Type: export.TypeDatabaseBackup, Format: export.FormatDump,
		Status: export.StatusQueued, Params: []byte(`{"mode":"full"}`), UserID: export.AdminTokenUserID, KeyID: -1,
		ScheduleID: scheduleID, RequestHash: "h", CreatedAt: now, UpdatedAt: now}
}

func TestScheduleRoundTripAndListing(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, id := range []string{"sch_01", "sch_02", "sch_03"} {
		sc := newSchedule(id, now)
		sc.Enabled = id != "sch_02"
		got, err := s.CreateSchedule(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.Retention != sc.Retention || !got.ActiveSince.Equal(now) || got.LastSuccessAt != nil {
			t.Fatalf("created %+v", got)
		}
	}
	page, err := s.Schedules(ctx, nil, "", 2)
	if err != nil || len(page.Schedules) != 2 || page.Schedules[0].ID != "sch_03" || page.NextCursor == "" {
		t.Fatalf("page 1 %+v (%v)", page, err)
	}
	page, err = s.Schedules(ctx, nil, page.NextCursor, 2)
	if err != nil || len(page.Schedules) != 1 || page.Schedules[0].ID != "sch_01" || page.NextCursor != "" {
		t.Fatalf("page 2 %+v (%v)", page, err)
	}
	enabled, err := s.AllSchedules(ctx, true)
	if err != nil || len(enabled) != 2 {
		t.Fatalf("enabled %d (%v)", len(enabled), err)
	}
	if _, err := s.Schedule(ctx, "sch_nope"); !errors.Is(err, export.ErrScheduleNotFound) {
		t.Fatalf("missing: %v", err)
	}

	// An edit that starts the schedule afresh ends its overdue stretch.
	if ok, err := s.MarkOverdue(ctx, "sch_01", now); !ok || err != nil {
		t.Fatalf("mark overdue: %v %v", ok, err)
	}
	if ok, _ := s.MarkOverdue(ctx, "sch_01", now.Add(time.Second)); ok {
		t.Fatal("marked overdue twice")
	}
	sc, _ := s.Schedule(ctx, "sch_01")
	sc.Name = "renamed"
	if sc, err = s.UpdateSchedule(ctx, sc); err != nil || sc.OverdueSince == nil || sc.Name != "renamed" {
		t.Fatalf("rename: %+v (%v)", sc, err)
	}
	sc.ActiveSince = now.Add(time.Hour)
	if sc, err = s.UpdateSchedule(ctx, sc); err != nil || sc.OverdueSince != nil {
		t.Fatalf("restart: %+v (%v)", sc, err)
	}
}

func TestScheduledJobsOnePerSlot(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := s.CreateSchedule(ctx, newSchedule("sch_A", now)); err != nil {
		t.Fatal(err)
	}
	slot := now.Truncate(time.Second)
	// Ten scheduler processes tick for the same slot at once; the per-owner
	// cap (even at 1) does not apply to them.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.CreateScheduledJob(ctx, scheduledJob("sch_A", slot), slot)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d jobs created for one slot", created)
	}
	if ok, err := s.CreateScheduledJob(ctx, scheduledJob("sch_A", slot.Add(-time.Hour)), slot.Add(-time.Hour)); !ok || err != nil {
		t.Fatalf("older slot: %v %v", ok, err)
	}
	sc, _ := s.Schedule(ctx, "sch_A")
	if sc.LastSlotAt == nil || !sc.LastSlotAt.Equal(slot) {
		t.Fatalf("last slot %v, want %v (it never goes back)", sc.LastSlotAt, slot)
	}
	j, err := s.Job(ctx, export.SlotJobID("sch_A", slot))
	if err != nil || j.ScheduleID != "sch_A" || j.Status != export.StatusQueued {
		t.Fatalf("job %+v (%v)", j, err)
	}
	page, err := s.Jobs(ctx, export.JobFilter{ScheduleID: "sch_A", Limit: 10})
	if err != nil || len(page.Jobs) != 2 {
		t.Fatalf("listing by schedule: %d (%v)", len(page.Jobs), err)
	}
	// Two scheduled backups are queued for the admin token; they do not
	// count against its own cap.
	if _, _, err := s.CreateJob(ctx, newJob(export.AdminTokenUserID, ""), 1); err != nil {
		t.Fatalf("the admin token's own job under a cap of 1: %v", err)
	}
	if _, _, err := s.CreateJob(ctx, newJob(export.AdminTokenUserID, ""), 1); export.KindOf(err) != export.KindTooMany {
		t.Fatalf("a second own job under a cap of 1: %v", err)
	}
}

func TestScheduledBackupsAndDelete(t *testing.T) {
	t.Parallel()
	s, pool := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := s.CreateSchedule(ctx, newSchedule("sch_B", now)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		slot := now.Truncate(time.Second).Add(time.Duration(i) * time.Minute)
		j := scheduledJob("sch_B", slot)
		if _, err := s.CreateScheduledJob(ctx, j, slot); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
		if i == 2 {
			break // the newest stays queued
		}
		if _, err := s.BeginAttempt(ctx, j.ID, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := s.Succeed(ctx, j.ID, "tok", "backups/"+j.ID+"/b.dump", export.Result{Filename: "b.dump", SizeBytes: 1}); err != nil {
			t.Fatal(err)
		}
	}
	backups, err := s.ScheduledBackups(ctx, "sch_B")
	if err != nil || len(backups) != 2 || backups[0].ID != ids[1] {
		t.Fatalf("backups %v (%v)", backups, err)
	}
	sc, _ := s.Schedule(ctx, "sch_B")
	if sc.LastSuccessAt == nil || !sc.LastSuccessAt.Equal(*backups[0].FinishedAt) {
		t.Fatalf("last success %v, want %v", sc.LastSuccessAt, backups[0].FinishedAt)
	}
	// Expired backups still count as successes.
	if err := s.Expire(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if sc, _ = s.Schedule(ctx, "sch_B"); sc.LastSuccessAt == nil {
		t.Fatal("an expired backup is no longer a success")
	}

	expiry := now.Add(7 * 24 * time.Hour).Truncate(time.Second)
	if err := s.DeleteSchedule(ctx, "sch_B", expiry); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSchedule(ctx, "sch_B", expiry); !errors.Is(err, export.ErrScheduleNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The remaining backup now expires like any other artifact.
	j, err := s.Job(ctx, ids[0])
	if err != nil || j.Result == nil || !j.Result.ExpiresAt.Equal(expiry) || j.ScheduleID != "sch_B" {
		t.Fatalf("orphaned backup %+v (%v)", j.Result, err)
	}
	var raw []byte
	if err := pool.QueryRow(ctx, `SELECT result FROM hubexport.jobs WHERE id = $1`, ids[0]).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var res struct{ Filename string }
	if json.Unmarshal(raw, &res); res.Filename != "b.dump" {
		t.Fatalf("result lost its other fields: %s", raw)
	}
	expired, err := s.ExpiredArtifacts(ctx, 10)
	if err != nil || len(expired) != 0 {
		t.Fatalf("expired before its time: %d (%v)", len(expired), err)
	}

	// The backup that was still running when its schedule went finishes
	// later; the next check gives it an expiry too.
	if _, err := s.BeginAttempt(ctx, ids[2], "tok"); err != nil {
		t.Fatal(err)
	}
	if err := s.Succeed(ctx, ids[2], "tok", "backups/"+ids[2]+"/b.dump", export.Result{Filename: "b.dump"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireOrphanedBackups(ctx, expiry); n != 1 || err != nil {
		t.Fatalf("orphans expired: %d (%v)", n, err)
	}
	if j, _ := s.Job(ctx, ids[2]); j.Result.ExpiresAt.IsZero() {
		t.Fatal("the late backup has no expiry")
	}
	if n, _ := s.ExpireOrphanedBackups(ctx, expiry); n != 0 {
		t.Fatalf("second pass: %d", n)
	}
}

// A schedule's encryption settings survive the round trip; a schedule that
// never set them reads as plain with no recipients.
func TestScheduleEncryptionColumns(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	plain, err := s.CreateSchedule(ctx, newSchedule("sch_plain", now))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Encrypt || plain.AgeRecipients == nil || len(plain.AgeRecipients) != 0 {
		t.Fatalf("plain schedule: encrypt %v, recipients %#v", plain.Encrypt, plain.AgeRecipients)
	}
	sc := newSchedule("sch_enc", now)
	sc.Encrypt, sc.AgeRecipients = true, []string{"age1aaa", "ssh-ed25519 AAAA"}
	got, err := s.CreateSchedule(ctx, sc)
	if err != nil || !got.Encrypt || len(got.AgeRecipients) != 2 || got.AgeRecipients[1] != "ssh-ed25519 AAAA" {
		t.Fatalf("created %+v (%v)", got, err)
	}
	got.Encrypt, got.AgeRecipients = false, nil
	if got, err = s.UpdateSchedule(ctx, got); err != nil || got.Encrypt || len(got.AgeRecipients) != 0 {
		t.Fatalf("updated %+v (%v)", got, err)
	}
	if got, err = s.Schedule(ctx, "sch_enc"); err != nil || got.Encrypt || got.AgeRecipients == nil {
		t.Fatalf("read back %+v (%v)", got, err)
	}
}
