package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

// Options is what the API needs from the rest of the program.
type Options struct {
	Service *export.Service
	Auth    export.Authenticator
	// Lookups, if set, serves the read-only lists behind the web page's
	// selectors under /api/v1/hub/.
	Lookups *export.Lookups
	Log     *slog.Logger
	// Ready holds the readiness checks by name ("postgres", "redis",
	// "storage"). Each gets its own 3 s deadline.
	Ready map[string]func(ctx context.Context) error
	// Files, if set, serves the local storage's signed links under
	// /api/v1/files/ with the full request path. It gets no authentication:
	// the link's signature is the credential.
	Files http.Handler
	// Metrics, if set, serves GET /metrics (Prometheus) without
	// authentication, like the health checks.
	Metrics http.Handler
	// PollInterval is how often an event stream re-reads its job; default 1s.
	// However many streams follow a job, it is read once per interval.
	PollInterval time.Duration
	// StreamRecheck is how often an open event stream checks its caller's
	// credential again (KEY_CACHE_TTL); default 30s.
	StreamRecheck time.Duration
	// StreamsPerPrincipal and StreamsMax cap the open event streams of one
	// caller and of the whole process (0: no cap).
	StreamsPerPrincipal, StreamsMax int
	// DownloadWriteTimeout ends a download through Files whose client has
	// not taken any bytes for that long (0: never).
	DownloadWriteTimeout time.Duration
	// AuthFailuresPerMinute limits the failed authentications one client
	// address may make; over it, its requests get 429 (0: no limit).
	AuthFailuresPerMinute int
	// TrustedProxies lists the proxies (addresses or CIDRs) whose
	// X-Forwarded-For / X-Real-IP headers are believed when recording a
	// client's address. Empty trusts none.
	TrustedProxies []string
	// Webhooks, if set, serves /api/v1/webhooks.
	Webhooks *export.Webhooks
	// Audit, if set, serves GET /api/v1/audit (administrators only).
	Audit *export.AuditLog
	// Schedules, if set, serves /api/v1/schedules (administrators only).
	Schedules *export.Schedules
}

const (
	maxBodyBytes      = 1 << 20
	readyTimeout      = 3 * time.Second
	keepAliveInterval = 15 * time.Second
)

type handler struct {
	svc       *export.Service
	auth      export.Authenticator
	lookups   *export.Lookups
	log       *slog.Logger
	ready     map[string]func(context.Context) error
	files     http.Handler
	metrics   http.Handler
	proxies   []string
	poll      time.Duration
	keepAlive time.Duration
	recheck   time.Duration
	streams   *streamGate
	watches   *jobWatches
	failures  *failureLimiter
	webhooks  *export.Webhooks
	audit     *export.AuditLog
	schedules *export.Schedules
}

// New returns the API's handler. It panics on a missing Service or Auth, or
// on a TrustedProxies entry that is not an IP address or CIDR: those are
// wiring mistakes to catch at start-up.
func New(o Options) http.Handler {
	return newHandler(o).routes()
}

func newHandler(o Options) *handler {
	if o.Service == nil || o.Auth == nil {
		panic("web: Options.Service and Options.Auth are required")
	}
	h := &handler{
		svc:       o.Service,
		auth:      o.Auth,
		lookups:   o.Lookups,
		log:       o.Log,
		ready:     o.Ready,
		files:     o.Files,
		metrics:   o.Metrics,
		proxies:   o.TrustedProxies,
		poll:      o.PollInterval,
		keepAlive: keepAliveInterval,
		webhooks:  o.Webhooks,
		audit:     o.Audit,
		schedules: o.Schedules,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.poll <= 0 {
		h.poll = time.Second
	}
	h.recheck = o.StreamRecheck
	if h.recheck <= 0 {
		h.recheck = 30 * time.Second
	}
	h.streams = newStreamGate(o.StreamsPerPrincipal, o.StreamsMax)
	h.watches = newJobWatches(h.svc.Load, h.poll, h.log)
	h.failures = newFailureLimiter(o.AuthFailuresPerMinute)
	if h.files != nil && o.DownloadWriteTimeout > 0 {
		h.files = writeTimeout(h.files, o.DownloadWriteTimeout)
	}
	return h
}

var releaseMode sync.Once

func (h *handler) routes() *gin.Engine {
	// Gin's mode is process-wide; release mode silences its debug output.
	releaseMode.Do(func() { gin.SetMode(gin.ReleaseMode) })

	r := gin.New()
	if err := r.SetTrustedProxies(h.proxies); err != nil {
		panic("web: invalid TrustedProxies: " + err.Error())
	}
	r.HandleMethodNotAllowed = true
	// An API answers the path it was asked, never a redirect to a guess.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false

	r.Use(requestID, h.accessLog, h.recoverPanic)
	r.NoRoute(func(c *gin.Context) {
		h.fail(c, export.Errorf(export.KindNotFound, "route_not_found", "no route %s %s; the API lives under /api/v1", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", "method "+c.Request.Method+" is not allowed here; use "+c.Writer.Header().Get("Allow"), nil)
	})

	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	h.pageRoutes(r)
	if h.metrics != nil {
		r.GET("/metrics", gin.WrapH(h.metrics))
	}
	r.GET("/api/v1/openapi.json", openAPI)

	if h.files != nil {
		files := gin.WrapH(h.files)
		r.GET("/api/v1/files/*path", files)
		r.HEAD("/api/v1/files/*path", files)
		// Restore uploads: the signature is the credential, as for downloads.
		r.PUT("/api/v1/files/*path", files)
	}

	api := r.Group("/api/v1", h.authenticate, h.checkText)
	api.POST("/exports", h.createExport)
	api.GET("/exports", h.listExports)
	api.GET("/exports/:id", h.getExport)
	api.DELETE("/exports/:id", h.cancelExport)
	api.GET("/exports/:id/events", h.exportEvents)
	api.GET("/exports/:id/download", h.downloadExport)
	api.POST("/restores/uploads", h.createRestoreUpload)
	if h.webhooks != nil {
		h.webhookRoutes(api)
	}
	if h.audit != nil {
		api.GET("/audit", h.listAudit)
	}
	if h.schedules != nil {
		h.scheduleRoutes(api)
	}
	api.GET("/me", h.me)
	if h.lookups != nil {
		api.GET("/hub/users", h.hubUsers)
		api.GET("/hub/keys", h.hubKeys)
		api.GET("/hub/providers", h.hubProviders)
		api.GET("/hub/endpoints", h.hubEndpoints)
	}
	return r
}

// Server returns an http.Server for the API with timeouts suited to it: no
// write timeout, because event streams and downloads last as long as they
// need to.
func Server(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      0,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
