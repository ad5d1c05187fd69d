package web

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

func (h *handler) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz runs every readiness check at once, each bounded by readyTimeout,
// and answers 503 naming the checks that failed when any fails. It needs no
// token, so it says only which check failed; the cause (an address, a
// driver's message) goes to the log.
func (h *handler) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(h.ready))
	for name, check := range h.ready {
		go func() { results <- result{name, check(ctx)} }()
	}

	checks := make(map[string]string, len(h.ready))
	failed := false
	// A check that ignores its context still cannot hold the probe up.
collect:
	for range h.ready {
		select {
		case r := <-results:
			checks[r.name] = "ok"
			if r.err != nil {
				checks[r.name], failed = "failed", true
				h.log.WarnContext(ctx, "readiness_check_failed", "check", r.name, "error", r.err)
			}
		case <-ctx.Done():
			break collect
		}
	}
	for name := range h.ready {
		if _, ok := checks[name]; !ok {
			checks[name], failed = "timed out", true
			h.log.WarnContext(ctx, "readiness_check_failed", "check", name, "error", "timed out after "+readyTimeout.String())
		}
	}

	if failed {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}
