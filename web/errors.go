package web

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// statusClientClosedRequest records, in the access log, a request whose
// client left before it was answered (nginx's convention).
const statusClientClosedRequest = 499

const defaultRetryAfter = 30 * time.Second

// fail answers err and stops the handler chain. It is the one place where
// export.Error kinds become HTTP statuses, and the one place internal errors
// are logged.
func (h *handler) fail(c *gin.Context, err error) {
	ctx := c.Request.Context()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		c.AbortWithStatus(statusClientClosedRequest)
		return
	}
	var e *export.Error
	status := 0
	if errors.As(err, &e) {
		status = statusOf(e.Kind)
	}
	if status == 0 {
		id := requestIDFrom(ctx)
		h.log.ErrorContext(ctx, "http_internal_error",
			"request_id", id, "method", c.Request.Method, "route", c.FullPath(), "error", err)
		writeError(c, http.StatusInternalServerError, "internal", "internal error; request id "+id, nil)
		return
	}
	switch e.Kind {
	case export.KindUnauthenticated:
		c.Header("WWW-Authenticate", "Bearer")
	case export.KindTooMany:
		c.Header("Retry-After", retryAfter(e.RetryAfter))
	}
	writeError(c, status, e.Code, e.Message, e.Fields)
}

// statusOf maps a kind to its status; 0 for KindInternal and unknown kinds.
func statusOf(k export.Kind) int {
	switch k {
	case export.KindInvalid:
		return http.StatusBadRequest
	case export.KindUnauthenticated:
		return http.StatusUnauthorized
	case export.KindForbidden:
		return http.StatusForbidden
	case export.KindNotFound:
		return http.StatusNotFound
	case export.KindConflict:
		return http.StatusConflict
	case export.KindGone:
		return http.StatusGone
	case export.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case export.KindTooMany:
		return http.StatusTooManyRequests
	case export.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return 0
}

// retryAfter renders d as whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	if d <= 0 {
		d = defaultRetryAfter
	}
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

func writeError(c *gin.Context, status int, code, message string, fields map[string]string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: message, Fields: fields}})
}
