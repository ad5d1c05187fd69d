package webhook

import (
	"context"
	"net/url"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

var _ export.OverdueNotifier = (*Dispatcher)(nil)

// OverdueData is the data of a backup.overdue event: which schedule stopped
// producing backups, since when, and where to look.
type OverdueData struct {
	ScheduleID   string `json:"schedule_id"`
	ScheduleName string `json:"schedule_name"`
	// LastSuccessAt is null when the schedule never made a backup.
	LastSuccessAt   *time.Time `json:"last_success_at"`
	OverdueSince    time.Time  `json:"overdue_since"`
	IntervalSeconds int64      `json:"interval_seconds"`
	Links           struct {
		Self    string `json:"self"`
		Backups string `json:"backups"`
	} `json:"links"`
}

// BackupOverdue implements export.OverdueNotifier: schedules are the
// administrators', so the event goes to the admin endpoints.
func (d *Dispatcher) BackupOverdue(ctx context.Context, s *export.Schedule, since time.Time, interval time.Duration) error {
	data := OverdueData{ScheduleID: s.ID, ScheduleName: s.Name, LastSuccessAt: s.LastSuccessAt,
		OverdueSince: since.UTC(), IntervalSeconds: int64(interval / time.Second)}
	data.Links.Self = d.PublicURL + "/api/v1/schedules/" + url.PathEscape(s.ID)
	data.Links.Backups = d.PublicURL + "/api/v1/exports?type=database_backup&schedule_id=" + url.QueryEscape(s.ID)
	return d.Emit(ctx, export.AdminTokenUserID, export.EventBackupOverdue, data)
}
