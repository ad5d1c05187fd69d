package web

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

func (h *handler) scheduleRoutes(api *gin.RouterGroup) {
	api.POST("/schedules", h.createSchedule)
	api.GET("/schedules", h.listSchedules)
	api.GET("/schedules/health", h.scheduleHealth)
	api.GET("/schedules/:id", h.getSchedule)
	api.PATCH("/schedules/:id", h.updateSchedule)
	api.DELETE("/schedules/:id", h.deleteSchedule)
	api.GET("/schedules/:id/retention", h.planRetention)
}

// planRetention is the retention dry run: which backups the schedule's
// policy, with the query's fields changed, keeps and why. Nothing is
// deleted.
func (h *handler) planRetention(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	plan, err := h.schedules.PlanRetention(ctx, p, c.Param("id"), c.Query)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, plan)
}

// scheduleHealth answers like /readyz, for the schedules: 503 while a
// schedule is overdue or its latest restore drill failed.
func (h *handler) scheduleHealth(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	health, err := h.schedules.Health(ctx, p)
	if err != nil {
		h.fail(c, err)
		return
	}
	status := http.StatusOK
	if health.Status != "healthy" {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, health)
}

func (h *handler) createSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var in export.ScheduleInput
	if err := h.decodeBody(c, &in); err != nil {
		h.fail(c, err)
		return
	}
	in.Address = c.ClientIP()
	s, err := h.schedules.Create(ctx, p, in)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/schedules/"+url.PathEscape(s.ID))
	c.JSON(http.StatusCreated, s)
}

func (h *handler) listSchedules(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	page, err := h.schedules.List(ctx, p, c.Query("cursor"), queryLimit(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (h *handler) getSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	s, err := h.schedules.Get(ctx, p, c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (h *handler) updateSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	var in export.ScheduleInput
	if err := h.decodeBody(c, &in); err != nil {
		h.fail(c, err)
		return
	}
	s, err := h.schedules.Update(ctx, p, c.Param("id"), in, c.ClientIP())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (h *handler) deleteSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	p, _ := principalFrom(ctx)
	if err := h.schedules.Delete(ctx, p, c.Param("id"), c.ClientIP()); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
