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
