package export

import (
	"context"
	"io"
	"time"
)

// ObjectStore keeps artifacts: a local folder or an S3 bucket. An object
// becomes visible only when its Upload is committed.
type ObjectStore interface {
	// Create starts writing key. Nothing is visible at key until Commit.
	Create(ctx context.Context, key, contentType string) (Upload, error)
	// Open reads a committed object (used to serve local downloads and to
	// verify artifacts).
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes a committed object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// Exists reports whether a committed object is at key.
	Exists(ctx context.Context, key string) (bool, error)
	// DownloadURL returns a link valid until expires that downloads key
	// under filename.
	DownloadURL(ctx context.Context, key, filename string, expires time.Time) (string, error)
	// UploadURL returns a link valid until u.Expires to which a client PUTs
	// the object at u.Key, with the headers to send. The link takes one
	// body of exactly u.SizeBytes bytes whose SHA-256 is u.SHA256; the
	// object appears whole or not at all, and a second PUT is refused.
	UploadURL(ctx context.Context, u UploadSpec) (SignedUpload, error)
	// AbortPending removes unfinished writes (temp files, multipart uploads)
	// whose key starts with prefix, whatever their age: the leftovers of an
	// earlier attempt of the same job.
	AbortPending(ctx context.Context, prefix string) (int, error)
	// Sweep removes unfinished writes started before olderThan: the leftovers
	// of crashed workers.
	Sweep(ctx context.Context, olderThan time.Time) (int, error)
	// ListOlder returns the keys of the committed objects whose key starts
	// with prefix and that were last modified before olderThan. Unfinished
	// writes are not listed.
	ListOlder(ctx context.Context, prefix string, olderThan time.Time) ([]string, error)
	// Ping checks that the store is reachable (readiness).
	Ping(ctx context.Context) error
	// String names the store for logs, without secrets.
	String() string
}

// Upload is an object being written. Write streams data; Commit makes the
// object visible; Abort discards everything written. Exactly one of Commit
// or Abort must be called; Abort after a failed Commit is allowed.
type Upload interface {
	io.Writer
	Commit(ctx context.Context) error
	Abort(ctx context.Context) error
}

// JobFilter selects jobs for a listing.
type JobFilter struct {
	UserID *int64 // only this owner's jobs
	Type   Type
	Status Status
	// ScheduleID keeps the jobs of one backup schedule.
	ScheduleID string
	// Cursor continues a listing (the value of a previous page's NextCursor).
	Cursor string
	Limit  int
}

// JobPage is one page of a job listing, newest first.
type JobPage struct {
	Jobs       []*Job `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// JobStore keeps jobs and the audit trail (PostgreSQL).
type JobStore interface {
	// CreateJob inserts j unless the same token (owner and key) already
	// sent the same idempotency key (then it returns that job and
	// replayed=true), and
	// fails with KindTooMany when the owner already has maxActive jobs
	// queued or running. The check and the insert are atomic.
	CreateJob(ctx context.Context, j *Job, maxActive int) (job *Job, replayed bool, err error)
	// Job returns the job with id, or ErrNotFound.
	Job(ctx context.Context, id string) (*Job, error)
	// Jobs lists jobs newest first.
	Jobs(ctx context.Context, f JobFilter) (JobPage, error)
	// CancelJob moves a queued or running job to canceled and returns it;
	// an ended job is returned unchanged.
	CancelJob(ctx context.Context, id string, e *JobError) (*Job, error)
	// MarkDeleted records that an ended job's artifact was deleted by a user.
	MarkArtifactDeleted(ctx context.Context, id string) (*Job, error)
	// Audit appends one entry to the audit trail.
	Audit(ctx context.Context, e AuditEntry) error
}

// Queue hands jobs to workers (Asynq).
type Queue interface {
	// Enqueue queues j for a worker. Enqueuing a job that is already queued
	// is not an error.
	Enqueue(ctx context.Context, j *Job) error
	// Cancel stops a queued or running job's task, best effort: workers also
	// notice a canceled job through the JobStore.
	Cancel(ctx context.Context, j *Job) error
}

// AuditEntry is one line of the audit trail: who did what, to what, from
// where, with which outcome.
type AuditEntry struct {
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"`
	UserID  int64          `json:"user_id"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	Params  map[string]any `json:"params,omitempty"`
	Address string         `json:"address,omitempty"`
	Outcome string         `json:"outcome"`
}
