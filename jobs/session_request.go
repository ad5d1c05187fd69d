package jobs

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
)

// TypeSessionRequest is the task type of session_request exports. It is a wire contract:
// never rename it while tasks may be queued.
const TypeSessionRequest = "export:session_request"

// Session snapshots expire after CCH's SESSION_TTL (300 s by default): these tasks go to the
// queue served first.
const sessionRequestQueue = QueueCritical

// NewSessionRequestTask builds the task of session_request job jobID. Retries are few and the
// timeout short: a retry minutes later finds the snapshot gone.
func NewSessionRequestTask(jobID string) *asynq.Task {
	return newJobTask(TypeSessionRequest, jobID, asynq.Queue(sessionRequestQueue), asynq.MaxRetry(jobTaskMaxRetry), asynq.Timeout(2*time.Minute))
}

// SessionSource reads CCH's session snapshots (internal/hub).
type SessionSource interface {
	SessionRequests(ctx context.Context, p export.SessionRequestParams) ([]export.SessionRequest, error)
}

// SessionRequestHandler runs session_request tasks.
type SessionRequestHandler struct {
	Runner *Runner
	Source SessionSource
}

// ProcessTask implements asynq.Handler.
func (h *SessionRequestHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.Runner.Run(ctx, t, h.produce)
}

func (h *SessionRequestHandler) produce(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
	var p export.SessionRequestParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return 0, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	reqs, err := h.Source.SessionRequests(ctx, p)
	if err != nil {
		return 0, err
	}
	n := int64(len(reqs))
	if p.WholeSession {
		err = export.WriteSessionRequests(w, p.SessionID, p.View, reqs)
	} else {
		err = export.WriteSessionRequest(w, p.SessionID, p.View, reqs[0])
	}
	if err != nil {
		return 0, err
	}
	pr.Set(n, n, "requests")
	return n, nil
}
