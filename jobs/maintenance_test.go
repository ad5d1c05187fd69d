package jobs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func TestRunCleanupExpiresOldUploads(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	putObject := func(key string, age time.Duration) {
		t.Helper()
		up, err := f.objects.Create(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write([]byte("dump")); err != nil {
			t.Fatal(err)
		}
		if err := up.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(f.dir, filepath.FromSlash(key)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	oldKey := export.UploadKey("upl_00000000000000000000000000000001")
	freshKey := export.UploadKey("upl_00000000000000000000000000000002")
	putObject(oldKey, 48*time.Hour)
	putObject(freshKey, time.Minute)
	// Records: one created two days ago (its object was written just now, so
	// only the record's age can tell it is stale), one fresh.
	staleID, liveID := "upl_00000000000000000000000000000003", "upl_00000000000000000000000000000004"
	for id, age := range map[string]time.Duration{staleID: 48 * time.Hour, liveID: time.Minute} {
		at := time.Now().Add(-age).UTC()
		if err := f.store.CreateUpload(ctx, &export.RestoreUpload{ID: id, SizeBytes: 4, SHA256: strings.Repeat("a", 64),
			UserID: -1, KeyID: -1, Actor: "admin_token", CreatedAt: at, ExpiresAt: at.Add(export.UploadTTL)}); err != nil {
			t.Fatal(err)
		}
		putObject(export.UploadKey(id), time.Minute)
	}

	var logs bytes.Buffer
	m := &Maintenance{Store: f.store, Objects: f.objects, Redis: f.rdb, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), UploadRetention: 24 * time.Hour, Uploads: f.store}
	if _, _, err := m.RunCleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.objects.Exists(ctx, oldKey); err != nil || ok {
		t.Fatalf("old upload still there (%v, %v)", ok, err)
	}
	if ok, err := f.objects.Exists(ctx, freshKey); err != nil || !ok {
		t.Fatalf("fresh upload deleted (%v, %v)", ok, err)
	}
	if ok, err := f.objects.Exists(ctx, export.UploadKey(staleID)); err != nil || ok {
		t.Fatalf("stale upload's object still there (%v, %v)", ok, err)
	}
	if _, err := f.store.Upload(ctx, staleID); !errors.Is(err, export.ErrNotFound) {
		t.Fatalf("stale upload's record: %v; want it deleted", err)
	}
	if ok, err := f.objects.Exists(ctx, export.UploadKey(liveID)); err != nil || !ok {
		t.Fatalf("live upload's object deleted (%v, %v)", ok, err)
	}
	if _, err := f.store.Upload(ctx, liveID); err != nil {
		t.Fatalf("live upload's record: %v", err)
	}
	if !strings.Contains(logs.String(), "msg=upload_expired") || !strings.Contains(logs.String(), oldKey) {
		t.Fatalf("no upload_expired log for %s:\n%s", oldKey, logs.String())
	}
}

// slowExpiry is a store whose first ExpiredArtifacts call waits for release.
type slowExpiry struct {
	JobStore
	entered chan struct{}
	release chan struct{}
}

func (s *slowExpiry) ExpiredArtifacts(ctx context.Context, limit int) ([]*export.Job, error) {
	select {
	case s.entered <- struct{}{}:
		<-s.release
	default:
	}
	return s.JobStore.ExpiredArtifacts(ctx, limit)
}

// A cleanup's lock is a short lease renewed while the cleanup runs: a
// process killed mid-cleanup holds up the other processes' cleanups for
// cleanupLockTTL at most, and a cleanup longer than that keeps its lock.
func TestCleanupLockIsAShortKeptLease(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	store := &slowExpiry{JobStore: f.store, entered: make(chan struct{}), release: make(chan struct{})}
	m := &Maintenance{Store: store, Objects: f.objects, Redis: f.rdb, Now: time.Now,
		Log: slog.New(slog.DiscardHandler), UploadRetention: 24 * time.Hour, Uploads: f.store}
	done := make(chan error, 1)
	go func() { done <- m.Cleanup(ctx, nil) }()
	<-store.entered
	const key = "hubexport:maintenance:cleanup"
	// Checked at 0, 3/4 and 6/4 of a TTL: held (renewed), never for longer than a TTL.
	for i := range 3 {
		if i > 0 {
			time.Sleep(cleanupLockTTL * 3 / 4)
		}
		ttl, err := f.rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > cleanupLockTTL {
			t.Fatalf("check %d: cleanup lock TTL %v (%v), want within (0, %v]", i, ttl, err, cleanupLockTTL)
		}
	}
	// A second cleanup meanwhile stands aside.
	if err := m.Cleanup(ctx, nil); err != nil {
		t.Fatal(err)
	}
	close(store.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := f.rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("cleanup lock left behind: %d, %v", n, err)
	}
}
