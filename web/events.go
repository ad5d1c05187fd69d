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
// its JSON changes, until it has ended, the client goes away, or the
// caller's credential stops being valid (checked every recheck interval;
// the stream then ends with an "event: closed"). Streams are capped per
// principal and in all, and every stream of a job shares one poll of it.
func (h *handler) exportEvents(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	id := c.Param("id")
	job, err := h.svc.Get(ctx, p, id)
	if err != nil {
		h.fail(c, err)
		return
	}
	release, err := h.streams.enter(p.String())
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()

	hd := c.Writer.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)

	// A reconnecting client sends the last id it saw; carry on from there so
	// ids keep increasing across reconnects.
	seq, _ := strconv.ParseUint(c.GetHeader("Last-Event-ID"), 10, 64)
	var last []byte
	var lastAt time.Time
	send := func(j *export.Job) bool {
		if j.UpdatedAt.Before(lastAt) {
			return true // an older read than the one sent already
		}
		data, err := json.Marshal(j)
		if err != nil {
			h.log.ErrorContext(ctx, "sse_encode_failed", "request_id", requestIDFrom(ctx), "job_id", id, "error", err)
			return false
		}
		if bytes.Equal(data, last) {
			return true
		}
		seq++
		if _, err := fmt.Fprintf(c.Writer, "event: job\nid: %d\ndata: %s\n\n", seq, data); err != nil {
			return false
		}
		c.Writer.Flush()
		last, lastAt = data, j.UpdatedAt
		return true
	}
	if !send(job) || job.Status.Ended() {
		return
	}

	w, leave := h.watches.watch(id, job)
	defer leave()
	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	recheck := time.NewTicker(h.recheck)
	defer recheck.Stop()
	token := presentedToken(c.Request.Header)
	for {
		cur, gone, changed := w.current()
		if gone {
			return
		}
		shown, err := h.svc.Show(p, cur)
		if err != nil {
			return // no longer visible to this caller: nothing more to tell
		}
		if !send(shown) || shown.Status.Ended() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-keepAlive.C:
			if _, err := c.Writer.WriteString(": keep-alive\n\n"); err != nil {
				return
			}
			c.Writer.Flush()
		case <-recheck.C:
			np, err := h.auth.Authenticate(ctx, token)
			switch {
			case err == nil:
				p = np
			case errors.Is(err, export.ErrUnauthenticated):
				fmt.Fprintf(c.Writer, "event: closed\ndata: %s\n\n",
					`{"reason":"credential_invalid","message":"the API key is no longer valid (disabled, expired or deleted)"}`)
				c.Writer.Flush()
				return
			default:
				// The hub cannot be asked right now: keep the stream, ask again next time.
			}
		}
	}
}
