package web

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// streamRetryAfter is the Retry-After of a stream refused by a limit.
const streamRetryAfter = 10 * time.Second

// streamGate bounds the open event streams, per principal and in all.
type streamGate struct {
	perPrincipal, total int

	mu    sync.Mutex
	open  map[string]int
	count int
}

func newStreamGate(perPrincipal, total int) *streamGate {
	return &streamGate{perPrincipal: perPrincipal, total: total, open: map[string]int{}}
}

// enter takes a slot for one of principal's streams. It returns the
// release function, or an error saying which limit is reached.
func (g *streamGate) enter(principal string) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err *export.Error
	switch {
	case g.perPrincipal > 0 && g.open[principal] >= g.perPrincipal:
		err = export.Errorf(export.KindTooMany, "too_many_streams",
			"this caller already has %d event streams open (EVENT_STREAMS_PER_PRINCIPAL); close one, or poll GET /exports/{id}", g.perPrincipal)
	case g.total > 0 && g.count >= g.total:
		err = export.Errorf(export.KindTooMany, "too_many_streams",
			"the server has %d event streams open (EVENT_STREAMS_MAX); try again shortly, or poll GET /exports/{id}", g.total)
	}
	if err != nil {
		err.RetryAfter = streamRetryAfter
		return nil, err
	}
	g.open[principal]++
	g.count++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.open[principal]--; g.open[principal] <= 0 {
				delete(g.open, principal)
			}
			g.count--
		})
	}, nil
}

// jobWatches shares one database poll per job among all the streams that
// watch it: however many clients follow a job, it is read once per poll
// interval. Each stream still applies its own caller's view (Service.Show).
type jobWatches struct {
	load  func(ctx context.Context, id string) (*export.Job, error)
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	watches map[string]*jobWatch
}

// jobWatch is the shared poll of one job.
type jobWatch struct {
	id     string
	cancel context.CancelFunc
	subs   int // guarded by jobWatches.mu

	mu      sync.Mutex
	job     *export.Job
	gone    bool          // the job no longer exists
	changed chan struct{} // closed when job or gone changes, then replaced
}

func newJobWatches(load func(context.Context, string) (*export.Job, error), every time.Duration, log *slog.Logger) *jobWatches {
	return &jobWatches{load: load, every: every, log: log, watches: map[string]*jobWatch{}}
}

// watch joins (or starts) the poll of job id, seeded with job as first
// read; the returned function leaves it, and the last to leave stops it.
func (ws *jobWatches) watch(id string, job *export.Job) (*jobWatch, func()) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.watches[id]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &jobWatch{id: id, cancel: cancel, job: job, changed: make(chan struct{})}
		ws.watches[id] = w
		go ws.poll(ctx, w)
	}
	w.subs++
	var once sync.Once
	return w, func() {
		once.Do(func() {
			ws.mu.Lock()
			defer ws.mu.Unlock()
			if w.subs--; w.subs == 0 {
				w.cancel()
				delete(ws.watches, id)
			}
		})
	}
}

// current is the latest read, and a channel closed when it changes.
func (w *jobWatch) current() (*export.Job, bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.job, w.gone, w.changed
}

func (w *jobWatch) publish(job *export.Job, gone bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if job != nil {
		w.job = job
	}
	w.gone = gone
	close(w.changed)
	w.changed = make(chan struct{})
}

func (ws *jobWatches) poll(ctx context.Context, w *jobWatch) {
	t := time.NewTicker(ws.every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		job, err := ws.load(ctx, w.id)
		switch {
		case err == nil:
			failing = false
			w.publish(job, false)
			if job.Status.Ended() {
				return // nothing more will change; the streams end on this read
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, export.ErrNotFound):
			w.publish(nil, true)
			return
		default:
			// Keep polling; log a failing dependency once per outage.
			if !failing {
				ws.log.WarnContext(ctx, "sse_poll_failed", "job_id", w.id, "error", err)
			}
			failing = true
		}
	}
}
