package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

func (h *handler) createExport(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var req export.CreateRequest
	if err := h.decodeBody(c, &req); err != nil {
		h.fail(c, err)
		return
	}
	req.IdempotencyKey = c.GetHeader("Idempotency-Key")
	req.Address = c.ClientIP()
	job, replayed, err := h.svc.Create(ctx, p, req)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/exports/"+url.PathEscape(job.ID))
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusAccepted, job)
}

// decodeBody reads a JSON body of at most maxBodyBytes into v, rejecting
// unknown fields; a refusal is recorded in the audit trail.
func (h *handler) decodeBody(c *gin.Context, v any) error {
	err := readBody(c, v)
	if err != nil {
		ctx := c.Request.Context()
		p, _ := principalFrom(ctx)
		h.svc.Refused(ctx, p, c.Request.Method+" "+c.FullPath(), c.Request.URL.Path, c.ClientIP(), err)
	}
	return err
}

func readBody(c *gin.Context, v any) error {
	// curl -d labels bodies as a form; the body is still read as JSON,
	// which keeps the README's one-line examples working.
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "application/x-www-form-urlencoded") {
			return export.Invalid("Content-Type", "must be application/json, not %q", ct)
		}
	}
	tooLarge := export.Errorf(export.KindTooLarge, "body_too_large", "the request body is over %d bytes (1 MiB)", maxBodyBytes)
	if c.Request.ContentLength > maxBodyBytes {
		return tooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge
		}
		return export.Invalid("body", "could not read the request body: %v", err)
	}
	return export.DecodeStrict(raw, v, "")
}

func (h *handler) listExports(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	f := export.JobFilter{
		Type:   export.Type(c.Query("type")),
		Status: export.Status(c.Query("status")),
		Cursor: c.Query("cursor"),
		// A schedule's backups are admin jobs: a user's listing stays empty.
		ScheduleID: c.Query("schedule_id"),
	}
	// The service forces a non-admin's own user id, whatever is asked here.
	if v := c.Query("user_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			h.fail(c, export.Invalid("user_id", "must be an integer user id, not %q", v))
			return
		}
		f.UserID = &id
	}
	f.Limit = queryLimit(c)
	page, err := h.svc.List(ctx, p, f)
	if err != nil {
		h.fail(c, err)
		return
	}
	if page.Jobs == nil {
		page.Jobs = []*export.Job{}
	}
	c.JSON(http.StatusOK, page)
}

func (h *handler) getExport(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	job, err := h.svc.Get(ctx, p, c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, job)
}

func (h *handler) cancelExport(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	job, err := h.svc.Cancel(ctx, p, c.Param("id"), c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, job)
}

func (h *handler) downloadExport(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	redirect := true
	if v, ok := c.GetQuery("redirect"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			h.fail(c, export.Invalid("redirect", "must be true or false, not %q", v))
			return
		}
		redirect = b
	}
	link, err := h.svc.DownloadLink(ctx, p, c.Param("id"), c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	// The link is a bearer credential until it expires: keep it out of caches.
	c.Header("Cache-Control", "no-store")
	if !redirect {
		c.JSON(http.StatusOK, link)
		return
	}
	c.Header("Location", link.URL)
	c.Status(http.StatusFound)
}
