package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

// me answers who the caller is, for the page's header and its choices.
func (h *handler) me(c *gin.Context) {
	p, _ := principalFrom(c.Request.Context())
	c.JSON(http.StatusOK, h.svc.Me(p))
}

// The read-only lists behind the page's selectors, each as {"data": [...]}.

func (h *handler) hubUsers(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	list, err := h.lookups.Users(ctx, p)
	h.answerList(c, list, err)
}

func (h *handler) hubKeys(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var userID *int64
	if v := c.Query("user_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			h.fail(c, export.Invalid("user_id", "must be an integer user id, not %q", v))
			return
		}
		userID = &id
	}
	list, err := h.lookups.Keys(ctx, p, userID)
	h.answerList(c, list, err)
}

func (h *handler) hubProviders(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	list, err := h.lookups.Providers(ctx, p)
	h.answerList(c, list, err)
}

func (h *handler) hubEndpoints(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	list, err := h.lookups.Endpoints(ctx, p)
	h.answerList(c, list, err)
}

func (h *handler) answerList(c *gin.Context, list any, err error) {
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}
