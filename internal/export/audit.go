package export

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// AuditRecord is an audit entry as listed, with its id.
type AuditRecord struct {
	ID int64 `json:"id"`
	AuditEntry
}

// AuditFilter selects audit entries. Since is inclusive, Until exclusive.
type AuditFilter struct {
	// Actor matches exactly ("admin_token", "user:2/key:5"); "user:2"
	// also matches every key of user 2.
	Actor string
	// Action matches exactly ("export.create"); a trailing ".*"
	// ("webhook.*") matches every action under it.
	Action string
	Since  *time.Time
	Until  *time.Time
	Cursor string
	Limit  int
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	Entries    []AuditRecord `json:"data"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// AuditStore reads the audit trail.
type AuditStore interface {
	AuditEntries(ctx context.Context, f AuditFilter) (AuditPage, error)
}

// AuditLog is the audit trail as the API shows it: to administrators only.
type AuditLog struct {
	Store AuditStore
}

// List returns the entries f selects, newest first.
func (a *AuditLog) List(ctx context.Context, p Principal, f AuditFilter) (AuditPage, error) {
	if !p.Admin {
		return AuditPage{}, Errorf(KindForbidden, "admin_only", "the audit trail is for administrators only")
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return AuditPage{}, err
	}
	f.Limit = limit
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return AuditPage{}, Invalid("until", "must be after since")
	}
	return a.Store.AuditEntries(ctx, f)
}

// auditTrail is where a service records who did what. A failed write is
// logged, never the action's failure: the action has happened.
type auditTrail struct {
	store interface {
		Audit(ctx context.Context, e AuditEntry) error
	}
	log *slog.Logger
	now func() time.Time
}

// record writes that p did action on target from address, ending in err.
func (t auditTrail) record(ctx context.Context, p Principal, action, target, address string, err error, params map[string]any) {
	t.write(ctx, AuditEntry{Actor: p.String(), UserID: p.UserID, Action: action, Target: target,
		Params: params, Address: address, Outcome: auditOutcome(err)})
}

// recordSystem writes what the scheduler did by itself, as the admin
// principal's system actor.
func (t auditTrail) recordSystem(ctx context.Context, action, target string, err error, params map[string]any) {
	t.write(ctx, AuditEntry{Actor: SchedulerActor, UserID: AdminTokenUserID, Action: action, Target: target,
		Params: params, Outcome: auditOutcome(err)})
}

func (t auditTrail) write(ctx context.Context, e AuditEntry) {
	e.At = t.now().UTC()
	if err := t.store.Audit(ctx, e); err != nil {
		t.log.ErrorContext(ctx, "audit_write_failed", "action", e.Action, "target", e.Target, "error", err)
	}
}

// auditOutcome is "ok", or "error:" and the error's code.
func auditOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return "error:" + e.Code
	}
	return "error:internal"
}
