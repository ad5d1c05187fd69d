package jobs

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/usagelog"
)

// TypeUsageLogs is the task type of usage_logs exports. It is a wire
// contract: never rename it while tasks may be queued.
const TypeUsageLogs = "export:usage_logs"

const usageLogsQueue = QueueExports

// NewUsageLogsTask builds the task of usage_logs job jobID. Exports have no
// row cap; the timeout is a backstop for a stuck attempt, far above what
// tens of millions of rows take.
func NewUsageLogsTask(jobID string) *asynq.Task {
	return newJobTask(TypeUsageLogs, jobID, asynq.Queue(usageLogsQueue), asynq.MaxRetry(jobTaskMaxRetry), asynq.Timeout(6*time.Hour))
}

// UsageLogSource reads CCH's usage logs (internal/hub).
type UsageLogSource interface {
	// UsageLogs streams the rows p selects, newest first; the row passed
	// to fn is reused between calls.
	UsageLogs(ctx context.Context, p export.UsageLogParams, fn func(*export.UsageRow) error) error
	// EstimateUsageLogs estimates their number for progress.
	EstimateUsageLogs(ctx context.Context, p export.UsageLogParams) (int64, error)
}

// UsageLogsHandler runs usage_logs tasks.
type UsageLogsHandler struct {
	Runner *Runner
	Source UsageLogSource
	// Feeds reads the marks of incremental feeds; FeedLag is how far
	// behind now a feed export stops.
	Feeds   FeedStore
	FeedLag time.Duration
}

// ProcessTask implements asynq.Handler.
func (h *UsageLogsHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.Runner.Run(ctx, t, h.produce)
}

// progressEvery is how many rows pass between two progress reports: few,
// so a small export's count moves too (Progress writes to PostgreSQL at
// most every ProgressEvery whatever this is).
const progressEvery = 128

func (h *UsageLogsHandler) produce(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
	var p export.UsageLogParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return 0, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	loc, err := export.LoadZone("params.timezone", p.Timezone)
	if err != nil {
		return 0, err
	}
	var feed *export.FeedAdvance
	if p.Window == export.WindowSinceLast {
		if h.Feeds == nil {
			return 0, export.Errorf(export.KindInvalid, "feeds_unsupported", "this worker cannot run incremental feeds; upgrade it")
		}
		if feed, err = feedWindow(ctx, h.Feeds, job, &p, h.Runner.Now(), h.FeedLag); err != nil {
			return 0, err
		}
	}
	// The estimate only feeds the progress bar: without it the bar shows
	// rows done and no total, and the export goes on.
	total, err := h.Source.EstimateUsageLogs(ctx, p)
	if err != nil {
		h.Runner.Log.WarnContext(ctx, "usage_logs_estimate_failed", "job_id", job.ID, "error", err)
		total = 0
	}
	pr.Set(0, total, "rows")

	enc, err := usagelog.New(job.Format, w, usagelog.Options{Lang: p.HeaderLang, Location: loc})
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	var n int64
	err = h.Source.UsageLogs(ctx, p, func(r *export.UsageRow) error {
		if err := enc.Write(r); err != nil {
			return err
		}
		if n == 0 && feed != nil {
			// Rows come newest first: the first is the feed's new mark.
			feed.To = &export.FeedMark{CreatedAt: r.CreatedAt.UTC(), ID: r.ID}
		}
		n++
		if n%progressEvery == 0 {
			if n > total && total > 0 {
				total = n // the estimate was low: keep the bar just short of full
			}
			pr.Set(n, total, "rows")
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := enc.Finish(); err != nil {
		return n, err
	}
	pr.Set(n, n, "rows")
	if feed != nil {
		pr.SetFeed(feed)
	}
	return n, enc.Close()
}
