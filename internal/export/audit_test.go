package export

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// auditWriter is an audit store that keeps entries in memory, or fails.
type auditWriter struct {
	entries []AuditEntry
	err     error
}

func (w *auditWriter) Audit(_ context.Context, e AuditEntry) error {
	if w.err != nil {
		return w.err
	}
	w.entries = append(w.entries, e)
	return nil
}

// The one audit writer every service uses: who, what, the outcome's code,
// the time in UTC; a failed write is logged, not the action's failure.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 29, 11, 30, 0, 0, time.FixedZone("CET", 3600))
	w := &auditWriter{}
	var logs bytes.Buffer
	trail := auditTrail{store: w, log: slog.New(slog.NewJSONHandler(&logs, nil)), now: func() time.Time { return at }}
	p := Principal{UserID: 2, KeyID: 5}
	ctx := context.Background()

	trail.record(ctx, p, "webhook.create", "webhook:wh_1", "203.0.113.7", nil, map[string]any{"enabled": true})
	trail.record(ctx, p, "export.create", "", "203.0.113.7", Invalid("limit", "must be between 1 and 200"), nil)
	trail.record(ctx, p, "export.cancel", "job:exp_1", "203.0.113.7", errors.New("connection reset"), nil)
	trail.recordSystem(ctx, "schedule.retention_delete", "job:exp_2", nil, nil)
	want := []AuditEntry{
		{At: at.UTC(), Actor: p.String(), UserID: 2, Action: "webhook.create", Target: "webhook:wh_1", Address: "203.0.113.7", Outcome: "ok", Params: map[string]any{"enabled": true}},
		{At: at.UTC(), Actor: p.String(), UserID: 2, Action: "export.create", Address: "203.0.113.7", Outcome: "error:invalid_request"},
		{At: at.UTC(), Actor: p.String(), UserID: 2, Action: "export.cancel", Target: "job:exp_1", Address: "203.0.113.7", Outcome: "error:internal"},
		{At: at.UTC(), Actor: SchedulerActor, UserID: AdminTokenUserID, Action: "schedule.retention_delete", Target: "job:exp_2", Outcome: "ok"},
	}
	if len(w.entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(w.entries), len(want))
	}
	for i, e := range w.entries {
		g, x := e, want[i]
		if g.At != x.At || g.Actor != x.Actor || g.UserID != x.UserID || g.Action != x.Action || g.Target != x.Target ||
			g.Address != x.Address || g.Outcome != x.Outcome || len(g.Params) != len(x.Params) {
			t.Errorf("entry %d = %+v, want %+v", i, g, x)
		}
	}

	w.err = errors.New("database is down")
	trail.record(ctx, p, "webhook.delete", "webhook:wh_1", "", nil, nil)
	if s := logs.String(); !strings.Contains(s, `"msg":"audit_write_failed"`) || !strings.Contains(s, `"action":"webhook.delete"`) {
		t.Errorf("a failed write was not logged: %s", s)
	}
}
