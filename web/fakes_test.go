package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Tokens the fake authenticator knows.
const (
	adminToken = "admin-secret-token"
	aliceToken = "sk-alice"
	bobToken   = "sk-bob"
)

var (
	alice = export.Principal{UserID: 1, KeyID: 11, UserName: "alice", KeyName: "alice key"}
	bob   = export.Principal{UserID: 2, KeyID: 21, UserName: "bob", KeyName: "bob key"}
)

type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, token string) (export.Principal, error) {
	switch token {
	case adminToken:
		return export.AdminToken(), nil
	case aliceToken:
		return alice, nil
	case bobToken:
		return bob, nil
	}
	return export.Principal{}, export.ErrUnauthenticated
}

// Job ids the fake store misbehaves on.
const (
	panicJobID  = "exp_panic"
	brokenJobID = "exp_broken"
	brokenCause = "read tcp 10.0.0.5:5432: connection reset by peer"
)

// fakeStore is an in-memory export.JobStore. It hands out copies so tests
// can change a job while a handler reads it.
type fakeStore struct {
	mu         sync.Mutex
	jobs       map[string]*export.Job
	audit      []export.AuditEntry
	retryAfter time.Duration
	reads      atomic.Int64 // calls of Job
	uploads    map[string]export.RestoreUpload
}

var _ export.JobStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{jobs: map[string]*export.Job{}, uploads: map[string]export.RestoreUpload{}}
}

var _ export.UploadStore = (*fakeStore)(nil)

func (s *fakeStore) CreateUpload(_ context.Context, u *export.RestoreUpload) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads[u.ID] = *u
	return nil
}

func (s *fakeStore) Upload(_ context.Context, id string) (*export.RestoreUpload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		return nil, export.ErrNotFound
	}
	return &u, nil
}

func (s *fakeStore) DeleteUpload(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.uploads, id)
	return nil
}

func (s *fakeStore) StaleUploads(context.Context, time.Time, int) ([]*export.RestoreUpload, error) {
	return nil, nil
}

func clone(j *export.Job) *export.Job {
	c := *j
	return &c
}

func (s *fakeStore) put(j *export.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if j.Params == nil {
		j.Params = []byte(`{}`)
	}
	s.jobs[j.ID] = clone(j)
}

func (s *fakeStore) update(id string, f func(*export.Job)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := clone(s.jobs[id])
	f(j)
	s.jobs[id] = j
}

func (s *fakeStore) audits() []export.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

// CreateJob follows store.Store.CreateJob (TestFakeStoreAgreesWithStore
// holds them together): a cap of 0 means no cap, scheduled jobs do not use
// up the owner's allowance, and a replayed idempotency key wins over the cap.
func (s *fakeStore) CreateJob(_ context.Context, j *export.Job, maxActive int) (*export.Job, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	active := 0
	for _, old := range s.jobs {
		if old.UserID != j.UserID {
			continue
		}
		if j.IdempotencyKey != "" && old.KeyID == j.KeyID && old.IdempotencyKey == j.IdempotencyKey {
			return clone(old), true, nil
		}
		if !old.Status.Ended() && old.ScheduleID == "" {
			active++
		}
	}
	if maxActive > 0 && active >= maxActive {
		e := export.Errorf(export.KindTooMany, "too_many_active_jobs",
			"you already have %d queued or running exports (the limit is %d); wait for one to finish or cancel one", active, maxActive)
		e.RetryAfter = s.retryAfter
		return nil, false, e
	}
	s.jobs[j.ID] = clone(j)
	return clone(j), false, nil
}

func (s *fakeStore) Job(_ context.Context, id string) (*export.Job, error) {
	s.reads.Add(1)
	switch id {
	case panicJobID:
		panic("fake store: corrupted row")
	case brokenJobID:
		return nil, fmt.Errorf("store: read job %s: %w", id, errors.New(brokenCause))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, export.ErrNotFound
	}
	return clone(j), nil
}

func (s *fakeStore) Jobs(_ context.Context, f export.JobFilter) (export.JobPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*export.Job
	for _, j := range s.jobs {
		if (f.UserID == nil || j.UserID == *f.UserID) && (f.Type == "" || j.Type == f.Type) &&
			(f.Status == "" || j.Status == f.Status) && (f.Cursor == "" || j.ID < f.Cursor) {
			all = append(all, clone(j))
		}
	}
	slices.SortFunc(all, func(a, b *export.Job) int { return strings.Compare(b.ID, a.ID) })
	var page export.JobPage
	if len(all) > f.Limit {
		all = all[:f.Limit]
		page.NextCursor = all[len(all)-1].ID
	}
	page.Jobs = all
	return page, nil
}

func (s *fakeStore) CancelJob(_ context.Context, id string, e *export.JobError) (*export.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, export.ErrNotFound
	}
	if !j.Status.Ended() {
		now := time.Now().UTC()
		j.Status, j.Error, j.FinishedAt = export.StatusCanceled, e, &now
	}
	return clone(j), nil
}

func (s *fakeStore) MarkArtifactDeleted(_ context.Context, id string) (*export.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, export.ErrNotFound
	}
	j.Status = export.StatusExpired
	return clone(j), nil
}

func (s *fakeStore) Audit(_ context.Context, e export.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, e)
	return nil
}

type fakeQueue struct{}

func (fakeQueue) Enqueue(context.Context, *export.Job) error { return nil }
func (fakeQueue) Cancel(context.Context, *export.Job) error  { return nil }

// fakeObjects is an export.ObjectStore that only signs links and deletes.
type fakeObjects struct{}

var _ export.ObjectStore = fakeObjects{}

func (fakeObjects) Create(context.Context, string, string) (export.Upload, error) {
	return nil, errors.New("fake objects: read only")
}
func (fakeObjects) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("fake objects: no content")
}
func (fakeObjects) Delete(context.Context, string) error         { return nil }
func (fakeObjects) Exists(context.Context, string) (bool, error) { return true, nil }
func (fakeObjects) DownloadURL(_ context.Context, key, filename string, expires time.Time) (string, error) {
	return fmt.Sprintf("https://files.example/%s?filename=%s&expires=%d&sig=fake", key, filename, expires.Unix()), nil
}
func (fakeObjects) UploadURL(_ context.Context, u export.UploadSpec) (export.SignedUpload, error) {
	return export.SignedUpload{URL: fmt.Sprintf("https://files.example/%s?expires=%d&size=%d&sig=fake-put", u.Key, u.Expires.Unix(), u.SizeBytes),
		Headers: map[string]string{"X-Fake-Sha256": u.SHA256}}, nil
}
func (fakeObjects) AbortPending(context.Context, string) (int, error) { return 0, nil }
func (fakeObjects) Sweep(context.Context, time.Time) (int, error)     { return 0, nil }
func (fakeObjects) ListOlder(context.Context, string, time.Time) ([]string, error) {
	return nil, nil
}
func (fakeObjects) Ping(context.Context) error { return nil }
func (fakeObjects) String() string             { return "fake" }

// syncBuffer collects log lines written from handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type bundle struct {
	h     http.Handler
	svc   *export.Service
	store *fakeStore
	logs  *syncBuffer
}

// setup builds the API over fresh fakes; mods adjust the handler before its
// routes are built.
func setup(t testing.TB, mods ...func(*handler)) *bundle {
	t.Helper()
	b := &bundle{store: newFakeStore(), logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var n atomic.Int64
	b.svc = &export.Service{
		Store:     b.store,
		Uploads:   b.store,
		Queue:     fakeQueue{},
		Objects:   fakeObjects{},
		Registry:  export.NewRegistry(export.ProbeLogSpec()),
		Log:       log,
		NewID:     func() string { return fmt.Sprintf("exp_%06d", n.Add(1)) },
		Now:       time.Now,
		MaxActive: 5,
		LinkTTL:   15 * time.Minute,
	}
	h := newHandler(Options{Service: b.svc, Auth: fakeAuth{}, Lookups: &export.Lookups{Dir: fakeDirectory{}}, Log: log, PollInterval: 5 * time.Millisecond})
	for _, m := range mods {
		m(h)
	}
	b.h = h.routes()
	return b
}

// do sends a request as the holder of token ("" for none); hdr is pairs of
// header names and values.
func (b *bundle) do(t *testing.T, method, target, token, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	return w
}
