package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

type (
	requestIDKey struct{}
	principalKey struct{}
)

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func withPrincipal(ctx context.Context, p export.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the caller that authenticate put in ctx.
func principalFrom(ctx context.Context) (export.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(export.Principal)
	return p, ok
}

// requestID takes a sane incoming X-Request-Id (so a proxy's id follows the
// request through) or makes one, and sends it back on every response.
func requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !saneRequestID(id) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Header("X-Request-Id", id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey{}, id))
	c.Next()
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.:", r):
		default:
			return false
		}
	}
	return true
}

// accessLog writes one line per request. It logs the route template, never
// the raw path or query (download links carry their signature there),
// headers or bodies.
func (h *handler) accessLog(c *gin.Context) {
	start := time.Now()
	defer func() {
		ctx := c.Request.Context()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		principal := "anonymous"
		if p, ok := principalFrom(ctx); ok {
			principal = p.String()
		}
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		h.log.Log(ctx, level, "http_request",
			"method", c.Request.Method,
			"route", route,
			"status", status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
			"request_id", requestIDFrom(ctx),
			"principal", principal,
			"client", c.ClientIP(),
		)
	}()
	c.Next()
}

// recoverPanic turns a handler's panic into a logged 500. A panic after the
// response has started aborts the connection instead, so the client sees a
// broken response rather than a clean but truncated one.
func (h *handler) recoverPanic(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		ctx := c.Request.Context()
		id := requestIDFrom(ctx)
		h.log.ErrorContext(ctx, "http_panic",
			"request_id", id, "method", c.Request.Method, "route", c.FullPath(),
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			panic(http.ErrAbortHandler)
		}
		writeError(c, http.StatusInternalServerError, "internal", "internal error; request id "+id, nil)
	}()
	c.Next()
}

// authenticate turns the presented token (Authorization: Bearer, else
// x-api-key) into the principal the handlers find in the request context.
func (h *handler) authenticate(c *gin.Context) {
	token := presentedToken(c.Request.Header)
	if token == "" {
		h.fail(c, export.ErrUnauthenticated)
		return
	}
	addr := c.ClientIP()
	if wait, blocked := h.failures.blocked(addr, time.Now()); blocked {
		h.fail(c, &export.Error{Kind: export.KindTooMany, Code: "too_many_auth_failures", RetryAfter: wait,
			Message: "too many failed authentications from this address (AUTH_FAILURES_PER_MINUTE); wait, then send a valid key"})
		return
	}
	p, err := h.auth.Authenticate(c.Request.Context(), token)
	if err != nil {
		if errors.Is(err, export.ErrUnauthenticated) {
			h.failures.failed(addr, time.Now())
		}
		h.fail(c, err)
		return
	}
	c.Request = c.Request.WithContext(withPrincipal(c.Request.Context(), p))
	c.Next()
}

// checkText refuses path parameters, query names and query values that are
// not text (invalid UTF-8, or NUL bytes, which PostgreSQL refuses), naming
// the field.
func (h *handler) checkText(c *gin.Context) {
	for _, p := range c.Params {
		if !export.IsText(p.Value) {
			h.refuse(c, export.Invalid(p.Key, "must be UTF-8 text without NUL bytes, not %q", p.Value))
			return
		}
	}
	for k, vs := range c.Request.URL.Query() {
		if !export.IsText(k) {
			h.refuse(c, export.Invalid(export.Printable(k), "is not a parameter name: names are UTF-8 text without NUL bytes"))
			return
		}
		for _, v := range vs {
			if !export.IsText(v) {
				h.refuse(c, export.Invalid(k, "must be UTF-8 text without NUL bytes, not %q", v))
				return
			}
		}
	}
	c.Next()
}

// refuse answers a request refused before it reached a service; a refused
// change (anything but a read) is recorded in the audit trail.
func (h *handler) refuse(c *gin.Context, err error) {
	if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead {
		ctx := c.Request.Context()
		p, _ := principalFrom(ctx)
		h.svc.Refused(ctx, p, m+" "+c.FullPath(), c.Request.URL.Path, c.ClientIP(), err)
	}
	h.fail(c, err)
}

func presentedToken(hd http.Header) string {
	if scheme, token, ok := strings.Cut(strings.TrimSpace(hd.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return strings.TrimSpace(hd.Get("X-Api-Key"))
}
