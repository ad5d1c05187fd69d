package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// memWebhooks keeps endpoints in memory; the methods a create and an
// update do not call are left to the embedded nil interface.
type memWebhooks struct {
	export.WebhookStore
	endpoints map[string]*export.WebhookEndpoint
}

func (m *memWebhooks) CreateWebhook(_ context.Context, e *export.WebhookEndpoint, _ int) (*export.WebhookEndpoint, error) {
	c := *e
	m.endpoints[e.ID] = &c
	return &c, nil
}

func (m *memWebhooks) Webhook(_ context.Context, id string) (*export.WebhookEndpoint, error) {
	e, ok := m.endpoints[id]
	if !ok {
		return nil, export.ErrWebhookNotFound
	}
	c := *e
	return &c, nil
}

func (m *memWebhooks) UpdateWebhook(_ context.Context, e *export.WebhookEndpoint) (*export.WebhookEndpoint, error) {
	c := *e
	m.endpoints[e.ID] = &c
	return &c, nil
}

func (m *memWebhooks) Audit(context.Context, export.AuditEntry) error { return nil }

// offlineResolver fails every lookup at once: fuzzing never touches the
// network, and only literal addresses can pass the guard.
var offlineResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no network while fuzzing")
}}

// FuzzWebhookInput feeds request bodies to POST /webhooks' decoding and
// validation with the real forgery guard. A refusal is a field error; an
// accepted endpoint has an http(s) URL with a host and no fragment whose
// literal address the guard allows, known and distinct events, and fields
// PostgreSQL can store; saving it again (PATCH with its own values) changes
// nothing.
func FuzzWebhookInput(f *testing.F) {
	w := &export.Webhooks{
		Store:  &memWebhooks{endpoints: map[string]*export.WebhookEndpoint{}},
		Sender: &Dispatcher{Guard: &Guard{Resolver: offlineResolver}},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewID:  func() string { return "whk_fuzz" },
		Now:    time.Now,
	}
	users := []export.Principal{{UserID: 2, KeyID: 2}, export.AdminToken()}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		p := users[0]
		if admin {
			p = users[1]
		}
		var in export.WebhookInput
		if err := export.DecodeStrict(raw, &in, ""); err != nil {
			wantWebhookFieldError(t, err)
			return
		}
		out, err := w.Create(ctx, p, in)
		if err != nil {
			wantWebhookFieldError(t, err)
			return
		}
		e := out.WebhookEndpoint
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Fragment != "" {
			t.Fatalf("accepted URL %q (from %q)", e.URL, in.URL)
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			t.Fatalf("accepted host %q, which the offline resolver cannot have resolved", u.Hostname())
		}
		if reason := Blocked(a); reason != "" {
			t.Fatalf("accepted URL %q whose address is %s", e.URL, reason)
		}
		if len(e.Events) == 0 {
			t.Fatalf("accepted an endpoint without events")
		}
		for i, ev := range e.Events {
			if !slices.Contains(export.EventTypes(), ev) || slices.Contains(e.Events[:i], ev) {
				t.Fatalf("accepted events %q", e.Events)
			}
		}
		for name, v := range map[string]string{"url": e.URL, "description": e.Description} {
			if strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("accepted %s %q holds a NUL character, which PostgreSQL cannot store", name, v)
			}
		}
		before, _ := json.Marshal(e)
		same, err := w.Update(ctx, p, e.ID, export.WebhookUpdate{URL: &e.URL, Events: &e.Events, Description: &e.Description, Enabled: &e.Enabled}, "")
		if err != nil {
			t.Fatalf("the accepted endpoint %s is refused when saved again: %v", before, err)
		}
		if after, _ := json.Marshal(same); !bytes.Equal(before, after) {
			t.Fatalf("saving the endpoint again changed it:\n before %s\n  after %s", before, after)
		}
	})
}

func wantWebhookFieldError(t *testing.T, err error) {
	t.Helper()
	var e *export.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *export.Error: the API would answer 500", err, err)
	}
	if e.Kind != export.KindInvalid || len(e.Fields) != 1 || e.Message == "" {
		t.Fatalf("error %v: kind %d, fields %v; want a bad-input error naming one field", err, e.Kind, e.Fields)
	}
}
