package webhook

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

var _ export.VerifyNotifier = (*Dispatcher)(nil)

// VerifiedData is the data of backup.verified and backup.verify_failed: a
// scheduled backup's restore drill and how it went.
type VerifiedData struct {
	ScheduleID   string            `json:"schedule_id"`
	ScheduleName string            `json:"schedule_name"`
	DrillJobID   string            `json:"drill_job_id"`
	BackupJobID  string            `json:"backup_job_id"`
	Passed       bool              `json:"passed"`
	VerifiedAt   time.Time         `json:"verified_at"`
	Error        *export.JobError  `json:"error,omitempty"`
	Details      map[string]any    `json:"details,omitempty"`
	Links        map[string]string `json:"links"`
}

// BackupVerified implements export.VerifyNotifier: schedules are the
// administrators', so the event goes to the admin endpoints.
func (d *Dispatcher) BackupVerified(ctx context.Context, s *export.Schedule, drill *export.Job, passed bool) error {
	data := VerifiedData{ScheduleID: s.ID, ScheduleName: s.Name, DrillJobID: drill.ID, Passed: passed, Error: drill.Error}
	if s.LastVerify != nil {
		data.VerifiedAt = s.LastVerify.At
	}
	var p export.VerifyParams
	if err := json.Unmarshal(drill.Params, &p); err == nil {
		data.BackupJobID = p.BackupJobID
	}
	if drill.Result != nil {
		data.Details = drill.Result.Details
	}
	data.Links = map[string]string{
		"self":     d.PublicURL + "/api/v1/exports/" + url.PathEscape(drill.ID),
		"schedule": d.PublicURL + "/api/v1/schedules/" + url.PathEscape(s.ID),
	}
	event := export.EventBackupVerified
	if !passed {
		event = export.EventBackupVerifyFailed
	}
	return d.Emit(ctx, export.AdminTokenUserID, event, data)
}
