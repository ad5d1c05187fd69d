package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

func (h *handler) webhookRoutes(api *gin.RouterGroup) {
	api.POST("/webhooks", h.createWebhook)
	api.GET("/webhooks", h.listWebhooks)
	api.GET("/webhooks/:id", h.getWebhook)
	api.PATCH("/webhooks/:id", h.updateWebhook)
	api.DELETE("/webhooks/:id", h.deleteWebhook)
	api.POST("/webhooks/:id/rotate", h.rotateWebhook)
	api.POST("/webhooks/:id/test", h.testWebhook)
	api.GET("/webhooks/:id/deliveries", h.listDeliveries)
	api.POST("/webhooks/:id/deliveries/:delivery_id/resend", h.resendDelivery)
}

// queryLimit reads ?limit: 0 when absent, which a listing takes as its
// default page size. The range is the listing's own rule; a given limit
// that is no page size at all (0, not a number) goes on as -1, which the
// listing refuses as it refuses any size out of its range.
func queryLimit(c *gin.Context) int {
	v, ok := c.GetQuery("limit")
	if !ok {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n != 0 {
		return n
	}
	return -1
}

func (h *handler) createWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var in export.WebhookInput
	if err := h.decodeBody(c, &in); err != nil {
		h.fail(c, err)
		return
	}
	in.Address = c.ClientIP()
	ep, err := h.webhooks.Create(ctx, p, in)
	if err != nil {
		h.fail(c, err)
		return
	}
	// The secret is in this answer only: keep it out of caches.
	c.Header("Cache-Control", "no-store")
	c.Header("Location", "/api/v1/webhooks/"+url.PathEscape(ep.ID))
	c.JSON(http.StatusCreated, ep)
}

func (h *handler) listWebhooks(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	page, err := h.webhooks.List(ctx, p, c.Query("cursor"), queryLimit(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (h *handler) getWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	ep, err := h.webhooks.Get(ctx, p, c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ep)
}

func (h *handler) updateWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var u export.WebhookUpdate
	if err := h.decodeBody(c, &u); err != nil {
		h.fail(c, err)
		return
	}
	ep, err := h.webhooks.Update(ctx, p, c.Param("id"), u, c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ep)
}

func (h *handler) deleteWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	if err := h.webhooks.Delete(ctx, p, c.Param("id"), c.ClientIP()); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handler) rotateWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	ep, err := h.webhooks.Rotate(ctx, p, c.Param("id"), c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, ep)
}

func (h *handler) testWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	d, err := h.webhooks.Test(ctx, p, c.Param("id"), c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, d)
}

func (h *handler) listDeliveries(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	page, err := h.webhooks.Deliveries(ctx, p, c.Param("id"), c.Query("cursor"), queryLimit(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (h *handler) resendDelivery(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	d, err := h.webhooks.Resend(ctx, p, c.Param("id"), c.Param("delivery_id"), c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, d)
}
