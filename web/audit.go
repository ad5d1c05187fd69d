package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

func (h *handler) listAudit(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	f := export.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action"), Cursor: c.Query("cursor")}
	f.Limit = queryLimit(c)
	var err error
	if f.Since, err = queryInstant(c, "since"); err != nil {
		h.fail(c, err)
		return
	}
	if f.Until, err = queryInstant(c, "until"); err != nil {
		h.fail(c, err)
		return
	}
	page, err := h.audit.List(ctx, p, f)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// queryInstant reads a time given as RFC 3339 or epoch milliseconds; nil
// when absent.
func queryInstant(c *gin.Context, name string) (*time.Time, error) {
	v := strings.TrimSpace(c.Query(name))
	if v == "" {
		return nil, nil
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return export.ParseInstant(name, []byte(v))
	}
	return export.ParseInstant(name, []byte(strconv.Quote(v)))
}
