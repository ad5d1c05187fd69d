package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

// exportEvents streams the job as server-sent events: now, then each time
// its JSON changes, until it has ended or the client goes away.
func (h *handler) exportEvents(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	id := c.Param("id")
	job, err := h.svc.Get(ctx, p, id)
	if err != nil {
		h.fail(c, err)
		return
	}

	hd := c.Writer.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)

	// A reconnecting client sends the last id it saw; carry on from there so
	// ids keep increasing across reconnects.
	seq, _ := strconv.ParseUint(c.GetHeader("Last-Event-ID"), 10, 64)
	var last []byte
	poll := time.NewTicker(h.poll)
	defer poll.Stop()
	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	pollFailing := false
	for {
		data, err := json.Marshal(job)
		if err != nil {
			h.log.ErrorContext(ctx, "sse_encode_failed", "request_id", requestIDFrom(ctx), "job_id", id, "error", err)
			return
		}
		if !bytes.Equal(data, last) {
			seq++
			if _, err := fmt.Fprintf(c.Writer, "event: job\nid: %d\ndata: %s\n\n", seq, data); err != nil {
				return
			}
			c.Writer.Flush()
			last = data
		}
		if job.Status.Ended() {
			return
		}

		if !waitForPoll(ctx.Done(), c.Writer, poll.C, keepAlive.C) {
			return
		}
		next, err := h.svc.Get(ctx, p, id)
		switch {
		case err == nil:
			job, pollFailing = next, false
		case ctx.Err() != nil:
			return
		case errors.Is(err, export.ErrNotFound):
			return // gone (or no longer visible): nothing more to tell
		default:
			// Keep the stream and try again at the next tick; log a failing
			// dependency once per outage, not once per tick.
			if !pollFailing {
				h.log.WarnContext(ctx, "sse_poll_failed", "request_id", requestIDFrom(ctx), "job_id", id, "error", err)
			}
			pollFailing = true
		}
	}
}

// waitForPoll sends keep-alive comments until the next poll tick. It
// reports false when the client has gone.
func waitForPoll(done <-chan struct{}, w gin.ResponseWriter, poll, keepAlive <-chan time.Time) bool {
	for {
		select {
		case <-done:
			return false
		case <-poll:
			return true
		case <-keepAlive:
			if _, err := w.WriteString(": keep-alive\n\n"); err != nil {
				return false
			}
			w.Flush()
		}
	}
}
