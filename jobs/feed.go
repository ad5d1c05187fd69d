package jobs

import (
	"context"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Incremental feeds: a usage_logs export with window since_last exports the
// rows after its feed's mark up to a cut-off FeedLag behind now, and the
// runner records the new mark in the transaction that records the job's
// success (JobStore.Succeed), so a crash, retry or failed upload never moves
// it.

// FeedStore reads feed marks (internal/store).
type FeedStore interface {
	// FeedMark is the mark of owner's feed name; nil before its first
	// succeeded export.
	FeedMark(ctx context.Context, owner int64, name string) (*export.FeedMark, error)
}

// SetFeed records what this attempt's feed export moves its feed's mark by;
// the runner stores it with the job's success.
func (p *Progress) SetFeed(a *export.FeedAdvance) { p.feed = a }

// feedWindow points p at the rows of its feed not yet exported: after the
// feed's mark, before now less lag. It returns the advance to record, whose
// To the export moves up to the newest row it writes.
func feedWindow(ctx context.Context, feeds FeedStore, job *export.Job, p *export.UsageLogParams, now time.Time, lag time.Duration) (*export.FeedAdvance, error) {
	mark, err := feeds.FeedMark(ctx, job.UserID, p.Feed)
	if err != nil {
		return nil, err
	}
	cut := now.Add(-lag).UTC()
	p.After, p.EndTime = mark, &cut
	return &export.FeedAdvance{Owner: job.UserID, Name: p.Feed, From: mark, To: mark, CutOff: cut}, nil
}
