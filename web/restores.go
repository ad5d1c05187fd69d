package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// createRestoreUpload issues an upload URL for a database_restore's dump:
// the file goes straight to storage, never through this API's body limit
// or a reverse proxy's.
func (h *handler) createRestoreUpload(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	t, err := h.svc.CreateUpload(ctx, p, c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	// The URL is a bearer credential until it expires.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, t)
}
