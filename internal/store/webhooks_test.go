package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func newEndpoint(id string, owner int64, admin, enabled bool, events ...string) *export.WebhookEndpoint {
	return &export.WebhookEndpoint{ID: id, UserID: owner, Admin: admin, URL: "https://example.com/" + id, Events: events,
		Enabled: enabled, Secret: export.NewWebhookSecret(), CreatedAt: time.Now().UTC()}
}

// The endpoints subscribed to an event are the enabled ones listing it,
// whoever owns them.
func TestSubscribedWebhooks(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	for _, e := range []*export.WebhookEndpoint{
		newEndpoint("whk_admin", -1, true, true, export.EventTypes()...),
		newEndpoint("whk_u2", 2, false, true, export.EventExportSucceeded),
		newEndpoint("whk_u2off", 2, false, false, export.EventTypes()...),
		newEndpoint("whk_u4", 4, false, true, export.EventTypes()...),
	} {
		if _, err := s.CreateWebhook(ctx, e, 10); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		event string
		want  []string
	}{
		{export.EventExportSucceeded, []string{"whk_admin", "whk_u2", "whk_u4"}},
		{export.EventExportFailed, []string{"whk_admin", "whk_u4"}},
		{export.EventBackupOverdue, []string{"whk_admin", "whk_u4"}},
	} {
		eps, err := s.SubscribedWebhooks(ctx, c.event)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range eps {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.event, got, c.want)
		}
	}
	if _, err := s.CreateWebhook(ctx, newEndpoint("whk_u2c", 2, false, true, export.EventExportFailed), 2); export.KindOf(err) != export.KindConflict {
		t.Errorf("third endpoint over a cap of 2: %v", err)
	}
}

// A delivery's sends and attempts: attempts are numbered across sends, a
// stale send finds nothing to do, and the log lists every attempt.
func TestDeliveryLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	if _, err := s.CreateWebhook(ctx, newEndpoint("whk_1", 2, false, true, export.EventTypes()...), 10); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	d := &export.WebhookDelivery{ID: "msg_1", EndpointID: "whk_1", EventType: export.EventExportFailed, Payload: []byte(`{"type":"export.failed"}`), CreatedAt: now}
	if err := s.CreateDeliveries(ctx, []*export.WebhookDelivery{d}); err != nil {
		t.Fatal(err)
	}
	got, n, err := s.BeginDeliveryAttempt(ctx, "msg_1", 0)
	if err != nil || n != 1 || string(got.Payload) != `{"type":"export.failed"}` {
		t.Fatalf("first attempt: %d %v %+v", n, err, got)
	}
	next := now.Add(5 * time.Second)
	if err := s.FinishDeliveryAttempt(ctx, "msg_1", 0, export.WebhookAttempt{Attempt: 1, StatusCode: 500, LatencyMS: 12, Error: "500", At: now}, export.DeliveryPending, &next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResendDelivery(ctx, "whk_other", "msg_1"); !errors.Is(err, export.ErrDeliveryNotFound) {
		t.Errorf("resend through another endpoint: %v", err)
	}
	re, err := s.ResendDelivery(ctx, "whk_1", "msg_1")
	if err != nil || re.Send != 1 || re.Status != export.DeliveryPending || re.NextAttemptAt != nil {
		t.Fatalf("resend: %+v %v", re, err)
	}
	if _, _, err := s.BeginDeliveryAttempt(ctx, "msg_1", 0); !errors.Is(err, export.ErrDeliveryEnded) {
		t.Errorf("stale send: %v", err)
	}
	if _, n, err = s.BeginDeliveryAttempt(ctx, "msg_1", 1); err != nil || n != 2 {
		t.Fatalf("resent attempt: %d %v", n, err)
	}
	if err := s.FinishDeliveryAttempt(ctx, "msg_1", 1, export.WebhookAttempt{Attempt: 2, StatusCode: 204, LatencyMS: 3, At: now}, export.DeliverySucceeded, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.BeginDeliveryAttempt(ctx, "msg_1", 1); !errors.Is(err, export.ErrDeliveryEnded) {
		t.Errorf("delivered: %v", err)
	}
	page, err := s.WebhookDeliveries(ctx, "whk_1", "", 10)
	if err != nil || len(page.Deliveries) != 1 {
		t.Fatalf("log: %+v %v", page, err)
	}
	l := page.Deliveries[0]
	if l.Status != export.DeliverySucceeded || len(l.Attempts) != 2 || l.Attempts[0].StatusCode != 500 || l.Attempts[1].StatusCode != 204 || l.Attempts[1].Error != "" {
		t.Errorf("log entry %+v", l)
	}
	if due, err := s.DueDeliveries(ctx, 0, 10); err != nil || len(due) != 0 {
		t.Errorf("due after success: %+v %v", due, err)
	}
	if err := s.DeleteWebhook(ctx, "whk_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookDelivery(ctx, "msg_1"); !errors.Is(err, export.ErrDeliveryNotFound) {
		t.Errorf("delivery outlived its endpoint: %v", err)
	}
}
