package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Service is what the API does with jobs: create (with idempotency and the
// per-principal cap), read, list, cancel, and issue download links.
type Service struct {
	Store    JobStore
	Queue    Queue
	Objects  ObjectStore
	Registry *Registry
	Log      *slog.Logger
	NewID    func() string // "exp_" + a sortable unique id
	Now      func() time.Time
	// MaxActive is how many queued or running jobs one principal may have.
	MaxActive int
	// LinkTTL is how long a download link works.
	LinkTTL time.Duration
	// Notify, if set, hears of jobs this service ends (cancellation).
	Notify Notifier
	// Uploads keeps the records of restore uploads.
	Uploads UploadStore
	// MaxUploadBytes is the largest restore upload (RESTORE_UPLOAD_MAX_BYTES);
	// 0 means DefaultMaxUploadBytes.
	MaxUploadBytes int64
}

// CreateRequest is a request for a new export.
type CreateRequest struct {
	Type           Type            `json:"type"`
	Format         Format          `json:"format"`
	Params         json.RawMessage `json:"params"`
	IdempotencyKey string          `json:"-"`
	Address        string          `json:"-"`
}

// Create validates req for p, records the job and queues it. replayed is
// true when an earlier request with the same idempotency key made the job.
func (s *Service) Create(ctx context.Context, p Principal, req CreateRequest) (job *Job, replayed bool, err error) {
	auditParams := map[string]any{"type": req.Type, "format": req.Format}
	defer func() {
		s.trail().record(ctx, p, "export.create", jobTarget(job), req.Address, err, auditParams)
	}()
	spec, ok := s.Registry.Spec(req.Type)
	if req.Type == "" {
		return nil, false, Invalid("type", "is required; one of %s", strings.Join(s.Registry.Types(), ", "))
	}
	if !ok {
		return nil, false, Invalid("type", "unknown export type %q; use one of %s", req.Type, strings.Join(s.Registry.Types(), ", "))
	}
	if spec.AdminOnly && !p.Admin {
		return nil, false, Errorf(KindForbidden, "admin_only", "%s exports are for administrators only", req.Type)
	}
	format := req.Format
	if format == "" {
		format = spec.Formats[0]
	}
	if !slices.Contains(spec.Formats, format) {
		names := make([]string, len(spec.Formats))
		for i, f := range spec.Formats {
			names[i] = string(f)
		}
		return nil, false, Invalid("format", "%s exports come as %s, not %q", req.Type, strings.Join(names, ", "), format)
	}
	params, err := spec.Parse(req.Params, p)
	if err != nil {
		return nil, false, err
	}
	if spec.AuditParams {
		auditParams["params"] = RedactParams(params)
	}
	if spec.Check != nil {
		if err := spec.Check(ctx, s, params); err != nil {
			return nil, false, err
		}
	}
	if len(req.IdempotencyKey) > 255 {
		return nil, false, Invalid("Idempotency-Key", "must be at most 255 characters")
	}
	now := s.Now().UTC()
	j := &Job{
		ID:             s.NewID(),
		Type:           req.Type,
		Format:         format,
		Status:         StatusQueued,
		Params:         params,
		UserID:         p.UserID,
		KeyID:          p.KeyID,
		IdempotencyKey: req.IdempotencyKey,
		RequestHash:    requestHash(req.Type, format, params),
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	job, replayed, err = s.Store.CreateJob(ctx, j, s.MaxActive)
	if err != nil {
		return nil, false, err
	}
	if replayed {
		if job.RequestHash != j.RequestHash {
			return nil, false, Errorf(KindConflict, "idempotency_key_reused", "Idempotency-Key %q was already used with a different request; use a new key for a new request", req.IdempotencyKey)
		}
		return s.present(p, job), true, nil
	}
	// The job is durable once stored. If Redis is down the reconciler
	// enqueues it later, so the caller still gets its job.
	if err := s.Queue.Enqueue(ctx, job); err != nil {
		s.Log.WarnContext(ctx, "job_enqueue_deferred", "job_id", job.ID, "error", err)
	}
	return job, false, nil
}

func requestHash(t Type, f Format, params json.RawMessage) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", t, f)
	h.Write(params)
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns job id if p may see it.
func (s *Service) Get(ctx context.Context, p Principal, id string) (*Job, error) {
	j, err := s.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Show(p, j)
}

// Load reads job id with no visibility check, for one read shared by
// callers that were each checked with Get (an event stream's poll); pass
// what it returns through Show for each of them.
func (s *Service) Load(ctx context.Context, id string) (*Job, error) {
	return s.Store.Job(ctx, id)
}

// Show is what p sees of a loaded job: ErrNotFound if p may not see it.
func (s *Service) Show(p Principal, j *Job) (*Job, error) {
	if !p.CanSee(j) {
		return nil, ErrNotFound
	}
	return s.present(p, j), nil
}

// present shows j as p may see it: an ended job whose artifact has passed
// its expiry reads expired (before the cleanup has got to it), and only an
// administrator sees the raw cause of a failure.
func (s *Service) present(p Principal, j *Job) *Job {
	if j == nil {
		return nil
	}
	c := *j
	if c.Status == StatusSucceeded && c.Result != nil && !c.Result.ExpiresAt.IsZero() && !s.Now().Before(c.Result.ExpiresAt) {
		c.Status = StatusExpired
	}
	if c.Error != nil && c.Error.Detail != "" && !p.Admin {
		e := *c.Error
		e.Detail = ""
		c.Error = &e
	}
	return &c
}

// List returns p's jobs (an admin's listing may cover everyone's).
func (s *Service) List(ctx context.Context, p Principal, f JobFilter) (JobPage, error) {
	if !p.Admin {
		uid := p.UserID
		f.UserID = &uid
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return JobPage{}, err
	}
	f.Limit = limit
	if f.Status != "" && !f.Status.Valid() {
		return JobPage{}, Invalid("status", "unknown status %q; use queued, running, succeeded, failed, canceled or expired", f.Status)
	}
	if f.Type != "" {
		if _, ok := s.Registry.Spec(f.Type); !ok {
			return JobPage{}, Invalid("type", "unknown export type %q; use one of %s", f.Type, strings.Join(s.Registry.Types(), ", "))
		}
	}
	page, err := s.Store.Jobs(ctx, f)
	if err != nil {
		return JobPage{}, err
	}
	for i, j := range page.Jobs {
		page.Jobs[i] = s.present(p, j)
	}
	return page, nil
}

// Cancel stops a queued or running job; on an ended job it deletes the
// artifact, after which the job reads expired.
func (s *Service) Cancel(ctx context.Context, p Principal, id, address string) (job *Job, err error) {
	action := "export.cancel"
	defer func() { s.trail().record(ctx, p, action, "job:"+id, address, err, nil) }()
	j, err := s.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if !j.Status.Ended() {
		j, err = s.Store.CancelJob(ctx, id, &JobError{Code: "canceled", Message: "canceled by " + p.String()})
		if err != nil {
			return nil, err
		}
		if j.Status == StatusCanceled {
			if err := s.Queue.Cancel(ctx, j); err != nil {
				s.Log.WarnContext(ctx, "job_cancel_signal_failed", "job_id", id, "error", err)
			}
			if s.Notify != nil {
				s.Notify.JobEnded(context.WithoutCancel(ctx), j)
			}
			return s.present(p, j), nil
		}
		// It ended between our read and the cancel: fall through and treat
		// it as an ended job.
	}
	action = "export.delete_artifact"
	if j.StorageKey != "" && j.Status == StatusSucceeded {
		if err := DeleteArtifact(ctx, s.Objects, j.StorageKey); err != nil {
			return nil, fmt.Errorf("export: delete artifact of %s: %w", id, err)
		}
		deleted, err := s.Store.MarkArtifactDeleted(ctx, id)
		if err != nil {
			return nil, err
		}
		return s.present(p, deleted), nil
	}
	return s.present(p, j), nil
}

// Link is a signed download link.
type Link struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// DownloadLink issues a short-lived link to job id's artifact.
func (s *Service) DownloadLink(ctx context.Context, p Principal, id, address string) (link Link, err error) {
	defer func() { s.trail().record(ctx, p, "export.download_link", "job:"+id, address, err, nil) }()
	j, err := s.Get(ctx, p, id)
	if err != nil {
		return Link{}, err
	}
	switch j.Status {
	case StatusSucceeded:
	case StatusExpired:
		return Link{}, Errorf(KindGone, "artifact_expired", "the file of job %s has expired or was deleted; run the export again", id)
	default:
		return Link{}, Errorf(KindConflict, "job_not_succeeded", "job %s is %s; a download is available once it has succeeded", id, j.Status)
	}
	if j.StorageKey == "" {
		return Link{}, Errorf(KindConflict, "no_artifact", "%s jobs make no file; their result is in the job object", j.Type)
	}
	expires := s.Now().Add(s.LinkTTL).UTC().Truncate(time.Second)
	if j.Result != nil && !j.Result.ExpiresAt.IsZero() && expires.After(j.Result.ExpiresAt) {
		expires = j.Result.ExpiresAt
	}
	url, err := s.Objects.DownloadURL(ctx, j.StorageKey, j.Result.Filename, expires)
	if err != nil {
		return Link{}, fmt.Errorf("export: sign download of %s: %w", id, err)
	}
	return Link{URL: url, ExpiresAt: expires}, nil
}

// Refused records in the audit trail a change refused before it reached
// a service (a body or a path that cannot be read): action
// request.refused, the route as target, and the path and the fields at
// fault as params.
func (s *Service) Refused(ctx context.Context, p Principal, route, path, address string, err error) {
	params := map[string]any{"path": path}
	if e, ok := errors.AsType[*Error](err); ok && len(e.Fields) > 0 {
		params["fields"] = e.Fields
	}
	s.trail().record(ctx, p, "request.refused", route, address, err, params)
}

func (s *Service) trail() auditTrail { return auditTrail{store: s.Store, log: s.Log, now: s.Now} }

func jobTarget(j *Job) string {
	if j == nil {
		return ""
	}
	return "job:" + j.ID
}
