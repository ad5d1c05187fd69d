package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
)

// TypeProbeLogs is the task type of probe_logs exports. It is a wire
// contract: never rename it while tasks may be queued.
const TypeProbeLogs = "export:probe_logs"

const probeLogsQueue = QueueExports

// NewProbeLogsTask builds the task of probe_logs job jobID. Probe logs are
// small (at most 100,000 lines), so a short timeout suffices.
func NewProbeLogsTask(jobID string) *asynq.Task {
	return newJobTask(TypeProbeLogs, jobID, asynq.Queue(probeLogsQueue), asynq.MaxRetry(jobTaskMaxRetry), asynq.Timeout(10*time.Minute))
}

// ProbeLogSource reads CCH's endpoint probe logs (internal/hub).
type ProbeLogSource interface {
	ProbeLogs(ctx context.Context, p export.ProbeLogParams, fn func(export.ProbeLog) error) error
	CountProbeLogs(ctx context.Context, p export.ProbeLogParams) (int64, error)
}

// ProbeLogsHandler runs probe_logs tasks.
type ProbeLogsHandler struct {
	Runner *Runner
	Source ProbeLogSource
}

// ProcessTask implements asynq.Handler.
func (h *ProbeLogsHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.Runner.Run(ctx, t, h.produce)
}

func (h *ProbeLogsHandler) produce(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
	var p export.ProbeLogParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return 0, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	loc, err := export.LoadZone("params.timezone", p.Timezone)
	if err != nil {
		return 0, err
	}
	total, err := h.Source.CountProbeLogs(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("jobs: count probe logs: %w", err)
	}
	pr.Set(0, total, "lines")
	var (
		n   int64
		buf []byte
	)
	err = h.Source.ProbeLogs(ctx, p, func(l export.ProbeLog) error {
		buf = buf[:0]
		if n > 0 {
			buf = append(buf, '\n')
		}
		buf = export.AppendProbeLine(buf, l, loc, p.EndpointID == nil)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		n++
		pr.Set(n, total, "lines")
		return nil
	})
	return n, err
}
