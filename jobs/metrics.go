package jobs

import "time"

// Metrics is told what the workers do, for monitoring (internal/metrics
// implements it). Runner.Metrics may be nil: nothing is recorded then.
type Metrics interface {
	// JobEnded: a job reached a final status (succeeded, failed, canceled)
	// in this process, its last attempt having run for d.
	JobEnded(jobType, status string, d time.Duration, rows, bytes int64)
	// LockWaited: an attempt found lock taken and waited d, whether it got
	// the lock in the end or not. The backup lock is "backup".
	LockWaited(lock string, d time.Duration)
	// WebhookDelivered: one webhook delivery attempt ended with outcome
	// ("succeeded" or "failed").
	WebhookDelivered(outcome string)
	// BackupSucceeded: schedule's backup succeeded at at.
	BackupSucceeded(schedule string, at time.Time)
	// BackupVerified: a restore drill of schedule's backups passed at at.
	BackupVerified(schedule string, at time.Time)
}

type noMetrics struct{}

func (noMetrics) JobEnded(string, string, time.Duration, int64, int64) {}
func (noMetrics) LockWaited(string, time.Duration)                     {}
func (noMetrics) WebhookDelivered(string)                              {}
func (noMetrics) BackupSucceeded(string, time.Time)                    {}
func (noMetrics) BackupVerified(string, time.Time)                     {}

// metrics returns r's Metrics, never nil.
func (r *Runner) metrics() Metrics {
	if r.Metrics == nil {
		return noMetrics{}
	}
	return r.Metrics
}
