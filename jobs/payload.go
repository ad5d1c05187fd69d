package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"
)

// jobPayload is the payload of every export task: the job id. Everything
// else is read from PostgreSQL, so a task is never stale.
type jobPayload struct {
	JobID string `json:"job_id"`
}

// jobTaskMaxRetry is Asynq's retry limit for export tasks that may be
// retried: so high that Asynq never gives up on a job by itself. Asynq
// counts a crashed worker's expired lease as a failed try; hubexport counts
// in PostgreSQL instead, where only attempts that failed on their own use up
// a job's retries (failureBudgets) and crashes have their own bound
// (PoisonCrashes).
const jobTaskMaxRetry = 1000

// failureBudgets is how many times a job of each task type is retried after
// an attempt that failed on its own. A task enqueued with a lower Asynq
// MaxRetry (a restore: 0) keeps that lower budget.
var failureBudgets = map[string]int{
	TypeProbeLogs:      5,
	TypeUsageLogs:      3,
	TypeSessionRequest: 3,
	TypeDatabaseBackup: 2,
	TypeBackupVerify:   2,
}

// PoisonCrashes is how many attempts in a row may end with their worker
// process dying (killed, out of memory) before the job is failed as a
// poison job. Fewer crashes only delay the job.
const PoisonCrashes = 20

// failureBudget is the retry budget of task type taskType whose Asynq
// MaxRetry is maxRetry.
func failureBudget(taskType string, maxRetry int) int {
	if b, ok := failureBudgets[taskType]; ok && b < maxRetry {
		return b
	}
	return maxRetry
}

func newJobTask(taskType, jobID string, opts ...asynq.Option) *asynq.Task {
	b, _ := json.Marshal(jobPayload{JobID: jobID})
	return asynq.NewTask(taskType, b, append(opts, asynq.TaskID(jobID))...)
}

func parseJobPayload(t *asynq.Task) (string, error) {
	var p jobPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.JobID == "" {
		return "", fmt.Errorf("jobs: bad %s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	return p.JobID, nil
}
