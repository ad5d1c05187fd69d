package web

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// createRestoreUpload issues an upload URL for a database_restore's dump:
// the file goes straight to storage, never through this API's body limit
// or a reverse proxy's. The body declares the dump's size and SHA-256
// ({"size_bytes": N, "sha256": "hex"}); the URL takes only that file, once.
func (h *handler) createRestoreUpload(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var raw json.RawMessage
	if err := h.decodeBody(c, &raw); err != nil {
		h.fail(c, err)
		return
	}
	t, err := h.svc.CreateUpload(ctx, p, raw, c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	// The URL is a bearer credential until it expires.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, t)
}
