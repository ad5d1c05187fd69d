package export

import (
	"encoding/json"
	"time"
)

// Status is where a job is in its life.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	StatusExpired   Status = "expired"
)

// Ended reports whether the job will never run again.
func (s Status) Ended() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCanceled, StatusExpired:
		return true
	}
	return false
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	return s.Ended() || s == StatusQueued || s == StatusRunning
}

// Job is one export request and everything known about its run. The JSON
// form is the API's job object; fields marked "-" are internal.
type Job struct {
	ID       string          `json:"id"`
	Type     Type            `json:"type"`
	Format   Format          `json:"format"`
	Status   Status          `json:"status"`
	Params   json.RawMessage `json:"params"`
	Progress Progress        `json:"progress"`
	Result   *Result         `json:"result,omitempty"`
	Error    *JobError       `json:"error,omitempty"`
	// UserID is the owner: a CCH user id, or AdminTokenUserID for the admin token.
	UserID     int64      `json:"user_id"`
	Attempts   int        `json:"attempts"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// ScheduleID names the schedule that made the job (scheduled backups).
	ScheduleID string `json:"schedule_id,omitempty"`

	KeyID          int64  `json:"-"`
	IdempotencyKey string `json:"-"`
	RequestHash    string `json:"-"`
	StorageKey     string `json:"-"`
}

// Progress says how far a running job is. Total is an estimate where the
// exporter cannot know it exactly; 0 means unknown.
type Progress struct {
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Unit    string  `json:"unit"`
	Percent float64 `json:"percent"`
	// Note describes a wait or a phase ("waiting for the backup lock").
	Note string `json:"note,omitempty"`
}

// WithPercent fills Percent from Done and Total, capped below 100 until the
// job has ended so a bar never shows "done" early.
func (p Progress) WithPercent() Progress {
	if p.Total > 0 {
		pct := float64(p.Done) * 100 / float64(p.Total)
		if pct > 99.9 {
			pct = 99.9
		}
		p.Percent = float64(int64(pct*10)) / 10
	}
	return p
}

// Result describes a finished job's artifact. A type without artifacts
// (database_restore) leaves the file fields empty and reports in Details.
type Result struct {
	Filename    string    `json:"filename,omitzero"`
	ContentType string    `json:"content_type,omitzero"`
	SizeBytes   int64     `json:"size_bytes"`
	SHA256      string    `json:"sha256,omitzero"`
	Rows        int64     `json:"rows"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	// Details are type-specific facts: a backup's table-of-contents entry
	// count, what a restore did.
	Details map[string]any `json:"details,omitempty"`
	// Feed is what an incremental feed export moved its feed's mark by.
	Feed *FeedAdvance `json:"feed,omitempty"`
}

// JobError is why a job failed (or why its last attempt failed, while it
// waits for a retry). Code and Message are for everyone who may see the
// job: a stable code and a plain message. Detail is the raw cause (a
// database or storage error), shown to administrators only.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

func (e *JobError) Error() string {
	if e.Detail != "" {
		return e.Code + ": " + e.Message + ": " + e.Detail
	}
	return e.Code + ": " + e.Message
}
