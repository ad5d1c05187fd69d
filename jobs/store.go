package jobs

import (
	"context"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Attempt outcomes (EndAttempt). Only outcomeFailed counts against a job's
// retries; an attempt with no outcome crashed.
const (
	outcomeSucceeded   = "succeeded"
	outcomeFailed      = "failed"
	outcomeInterrupted = "interrupted"
)

// JobStore is the attempt bookkeeping the workers need (internal/store).
type JobStore interface {
	Job(ctx context.Context, id string) (*export.Job, error)
	// BeginAttempt makes the attempt holding token the job's owner; it
	// returns export.ErrJobEnded when the job has ended.
	BeginAttempt(ctx context.Context, id, token string) (*export.Job, error)
	// AttemptHistory counts the job's earlier attempts that failed on
	// their own, and the latest ones in a row that never ended (crashed).
	AttemptHistory(ctx context.Context, id, token string) (failed, crashedInARow int, err error)
	// EndAttempt records how the attempt holding token ended (outcome*).
	EndAttempt(ctx context.Context, id, token, outcome string) error
	// The following return export.ErrSuperseded when the attempt no longer
	// owns the job.
	SetProgress(ctx context.Context, id, token string, p export.Progress) error
	CheckAttempt(ctx context.Context, id, token string) error
	Succeed(ctx context.Context, id, token, storageKey string, r export.Result) error
	Requeue(ctx context.Context, id, token string, e *export.JobError) error
	Fail(ctx context.Context, id, token string, e *export.JobError, leftovers bool) error

	MarkLeftovers(ctx context.Context, id string, leftovers bool) error
	Unfinished(ctx context.Context, quiet time.Duration, limit int) ([]*export.Job, error)
	ExpiredArtifacts(ctx context.Context, limit int) ([]*export.Job, error)
	Expire(ctx context.Context, id string) error
	WithLeftovers(ctx context.Context, limit int) ([]*export.Job, error)
}
