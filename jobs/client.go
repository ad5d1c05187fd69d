package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
)

// taskSpec is how a job type becomes a task: its queue and constructor.
type taskSpec struct {
	queue string
	new   func(jobID string) *asynq.Task
}

// taskSpecs maps each export type to its task. Each task type's file
// declares its queue next to its constructor.
var taskSpecs = map[export.Type]taskSpec{
	export.TypeProbeLogs: {probeLogsQueue, NewProbeLogsTask},
	export.TypeUsageLogs: {usageLogsQueue, NewUsageLogsTask},

	export.TypeSessionRequest: {sessionRequestQueue, NewSessionRequestTask},

	export.TypeDatabaseBackup:  {databaseBackupQueue, NewDatabaseBackupTask},
	export.TypeDatabaseRestore: {databaseRestoreQueue, NewDatabaseRestoreTask},
	export.TypeBackupVerify:    {backupVerifyQueue, NewBackupVerifyTask},
}

// QueueOf is the queue a job type's tasks go to.
func QueueOf(t export.Type) string {
	if s, ok := taskSpecs[t]; ok {
		return s.queue
	}
	return QueueExports
}

// Client enqueues and cancels job tasks. It implements export.Queue.
type Client struct {
	Client    *asynq.Client
	Inspector *asynq.Inspector
}

// Enqueue implements export.Queue. A task that already exists (the job was
// enqueued before, or the reconciler got there first) is not an error.
func (c *Client) Enqueue(ctx context.Context, j *export.Job) error {
	spec, ok := taskSpecs[j.Type]
	if !ok {
		return fmt.Errorf("jobs: no task type for %s jobs", j.Type)
	}
	_, err := c.Client.EnqueueContext(ctx, spec.new(j.ID))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", j.ID, err)
	}
	return nil
}

// Cancel implements export.Queue: a waiting task is deleted, a running one
// is signalled. Both are best effort; a worker also sees the cancel in
// PostgreSQL within a lease interval.
func (c *Client) Cancel(ctx context.Context, j *export.Job) error {
	q := QueueOf(j.Type)
	err := c.Inspector.DeleteTask(q, j.ID)
	if err == nil || errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	// Deleting an active task fails: signal the worker instead.
	if cerr := c.Inspector.CancelProcessing(j.ID); cerr != nil {
		return fmt.Errorf("jobs: cancel %s: %w", j.ID, cerr)
	}
	return nil
}
