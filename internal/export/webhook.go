package export

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Event types webhooks announce. They are wire names: never rename one.
const (
	EventExportSucceeded = "export.succeeded"
	EventExportFailed    = "export.failed"
	EventExportCanceled  = "export.canceled"
	// EventBackupOverdue is raised by scheduled backups that stopped
	// succeeding (a dead man's switch).
	EventBackupOverdue = "backup.overdue"
	// EventBackupVerified and EventBackupVerifyFailed announce the outcome
	// of a scheduled backup's restore drill.
	EventBackupVerified     = "backup.verified"
	EventBackupVerifyFailed = "backup.verify_failed"
	// EventWebhookTest is what POST /webhooks/{id}/test sends. Endpoints
	// cannot subscribe to it: it goes to the endpoint tested, only.
	EventWebhookTest = "webhook.test"
)

// EventTypes lists the events an endpoint may subscribe to.
func EventTypes() []string {
	return []string{EventExportSucceeded, EventExportFailed, EventExportCanceled, EventBackupOverdue,
		EventBackupVerified, EventBackupVerifyFailed}
}

// EventFor is the event announcing that a job ended with status s; "" when
// the status announces nothing.
func EventFor(s Status) string {
	switch s {
	case StatusSucceeded:
		return EventExportSucceeded
	case StatusFailed:
		return EventExportFailed
	case StatusCanceled:
		return EventExportCanceled
	}
	return ""
}

// Notifier hears that a job has ended, so webhooks can announce it. It
// never fails its caller: a notifier logs its own errors.
type Notifier interface {
	JobEnded(ctx context.Context, j *Job)
}

// WebhookSecretPrefix starts every webhook signing secret (Standard Webhooks).
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a fresh signing secret: whsec_ and the base64 of
// 32 random bytes.
func NewWebhookSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// WebhookEndpoint is a URL that receives signed events. It belongs to the
// principal who created it; an admin's endpoint receives every event, a
// user's only the events of that user's jobs.
type WebhookEndpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why the endpoint was turned off other than by
	// its owner: the receiver answered 410, or the owner was deleted,
	// disabled or expired in the hub.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Admin: the owner is an administrator (in the answers of the API: now,
	// in the hub); the endpoint receives every event.
	Admin     bool      `json:"admin"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// PreviousSecretExpiresAt is when the secret replaced by the last
	// rotation stops signing.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`

	// Secret signs deliveries; PreviousSecret also signs them until
	// PreviousSecretExpiresAt. Never shown after creation or rotation.
	Secret         string `json:"-"`
	PreviousSecret string `json:"-"`
}

// SigningSecrets are the secrets that sign a delivery made at now, newest
// first.
func (e *WebhookEndpoint) SigningSecrets(now time.Time) []string {
	out := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecret)
	}
	return out
}

// Wants reports whether the endpoint receives events of type t.
func (e *WebhookEndpoint) Wants(t string) bool {
	return e.Enabled && slices.Contains(e.Events, t)
}

// OwnerState is what the hub says of an endpoint's owner now. An
// endpoint's scope follows it: an owner who is an administrator now hears
// of every job, any other only of their own; a deleted, disabled or
// expired owner's endpoints stop.
type OwnerState struct {
	Admin bool
	// Inactive is why the owner may no longer use hubexport ("deleted",
	// "disabled", "expired"); "" while they may.
	Inactive string
}

// StopReason is the disabled_reason of an inactive owner's endpoint.
func (s OwnerState) StopReason(userID int64) string {
	return fmt.Sprintf("stopped: the owner (user %d) was %s in the hub", userID, s.Inactive)
}

// Owners reads endpoint owners' current role and state from the hub
// (internal/hub). AdminTokenUserID is an active administrator; an id the
// hub does not know is a deleted owner.
type Owners interface {
	OwnerStates(ctx context.Context, userIDs []int64) (map[int64]OwnerState, error)
}

// NotAdminReason is why a delivery about another user's job was not sent
// to the endpoint of an owner who is no longer an administrator.
const NotAdminReason = "the endpoint's owner is no longer an administrator: it receives events about their own jobs only"

// WebhookWithSecret is an endpoint as answered by create and rotate: the
// only two answers that carry the secret.
type WebhookWithSecret struct {
	WebhookEndpoint
	Secret string `json:"secret"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event sent to one endpoint, with every attempt.
// Its ID is the message id receivers see in webhook-id: the same on every
// attempt and resend.
type WebhookDelivery struct {
	ID         string           `json:"id"`
	EndpointID string           `json:"endpoint_id"`
	EventType  string           `json:"event_type"`
	Status     string           `json:"status"`
	Payload    json.RawMessage  `json:"payload"`
	Attempts   []WebhookAttempt `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	// Send counts manual resends; each resend runs as a new task.
	Send int `json:"-"`
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	Attempt int `json:"attempt"`
	// StatusCode is the receiver's answer; 0 when there was none.
	StatusCode int       `json:"status_code,omitempty"`
	LatencyMS  int64     `json:"latency_ms"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// WebhookPage is one page of an endpoint listing.
type WebhookPage struct {
	Endpoints  []*WebhookEndpoint `json:"data"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// DeliveryPage is one page of a delivery log, newest first.
type DeliveryPage struct {
	Deliveries []*WebhookDelivery `json:"data"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// WebhookInput creates an endpoint. Events omitted means every event type.
type WebhookInput struct {
	URL         string    `json:"url"`
	Events      *[]string `json:"events"`
	Description string    `json:"description"`
	Enabled     *bool     `json:"enabled"`
	Address     string    `json:"-"`
}

// WebhookUpdate changes the fields it names.
type WebhookUpdate struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

// WebhookStore keeps endpoints and their delivery logs (PostgreSQL).
type WebhookStore interface {
	// CreateWebhook inserts e unless its owner already has max endpoints
	// (KindConflict).
	CreateWebhook(ctx context.Context, e *WebhookEndpoint, max int) (*WebhookEndpoint, error)
	// Webhook returns endpoint id or ErrWebhookNotFound.
	Webhook(ctx context.Context, id string) (*WebhookEndpoint, error)
	// Webhooks lists one owner's endpoints, newest first.
	Webhooks(ctx context.Context, userID int64, cursor string, limit int) (WebhookPage, error)
	// UpdateWebhook stores e's URL, events, description and enabled flag
	// (re-enabling clears DisabledReason).
	UpdateWebhook(ctx context.Context, e *WebhookEndpoint) (*WebhookEndpoint, error)
	DeleteWebhook(ctx context.Context, id string) error
	// RotateWebhookSecret makes secret current; the old one keeps signing
	// until previousUntil.
	RotateWebhookSecret(ctx context.Context, id, secret string, previousUntil time.Time) (*WebhookEndpoint, error)
	// WebhookDeliveries lists an endpoint's deliveries, newest first.
	WebhookDeliveries(ctx context.Context, endpointID, cursor string, limit int) (DeliveryPage, error)
	Audit(ctx context.Context, e AuditEntry) error
}

// WebhookSender checks URLs and sends the deliveries people ask for by
// hand (internal/webhook).
type WebhookSender interface {
	// CheckURL returns a user-readable error when deliveries to u would be
	// refused (the server-side request forgery guard).
	CheckURL(ctx context.Context, u *url.URL) error
	// SendTest records a webhook.test delivery to e and queues it.
	SendTest(ctx context.Context, e *WebhookEndpoint) (*WebhookDelivery, error)
	// Resend sends delivery id of e again, with the same message id.
	Resend(ctx context.Context, e *WebhookEndpoint, deliveryID string) (*WebhookDelivery, error)
}

// Webhook not-found sentinels, matched with errors.Is.
var (
	ErrWebhookNotFound  = &Error{Kind: KindNotFound, Code: "webhook_not_found", Message: "no such webhook endpoint"}
	ErrDeliveryNotFound = &Error{Kind: KindNotFound, Code: "delivery_not_found", Message: "no such delivery of this webhook endpoint"}
)

const (
	maxWebhookURL         = 2048
	maxWebhookDescription = 500
	// previousSecretLifetime is how long a rotated-out secret keeps signing.
	previousSecretLifetime = 24 * time.Hour
)

// Webhooks manages webhook endpoints for the API: validation, ownership,
// secrets and the audit trail.
type Webhooks struct {
	Store  WebhookStore
	Sender WebhookSender
	Log    *slog.Logger
	NewID  func() string // "whk_" + a sortable unique id
	Now    func() time.Time
	// MaxPerPrincipal caps how many endpoints one principal may have.
	MaxPerPrincipal int
	// Owners gives the owners' current roles, which answers show as admin.
	Owners Owners
}

// withRole sets each endpoint's Admin to its owner's current role.
func (w *Webhooks) withRole(ctx context.Context, eps ...*WebhookEndpoint) error {
	if w.Owners == nil || len(eps) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(eps))
	for _, e := range eps {
		ids = append(ids, e.UserID)
	}
	states, err := w.Owners.OwnerStates(ctx, ids)
	if err != nil {
		return fmt.Errorf("export: webhook owners' roles: %w", err)
	}
	for _, e := range eps {
		e.Admin = states[e.UserID].Admin
	}
	return nil
}

// Create validates in and stores a new endpoint with a fresh secret, shown
// in this answer only.
func (w *Webhooks) Create(ctx context.Context, p Principal, in WebhookInput) (out *WebhookWithSecret, err error) {
	defer func() {
		var ep *WebhookEndpoint
		if out != nil {
			ep = &out.WebhookEndpoint
		}
		w.trail().record(ctx, p, "webhook.create", webhookTarget(ep), in.Address, err, webhookAuditParams(in.URL, in.Events, in.Enabled))
	}()
	u, err := w.checkURL(ctx, in.URL)
	if err != nil {
		return nil, err
	}
	events := EventTypes()
	if in.Events != nil {
		if events, err = checkEvents(*in.Events); err != nil {
			return nil, err
		}
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, err
	}
	now := w.Now().UTC()
	e := &WebhookEndpoint{
		ID:          w.NewID(),
		URL:         u.String(),
		Events:      events,
		Description: in.Description,
		Enabled:     in.Enabled == nil || *in.Enabled,
		Admin:       p.Admin,
		UserID:      p.UserID,
		CreatedAt:   now,
		UpdatedAt:   now,
		Secret:      NewWebhookSecret(),
	}
	max := w.MaxPerPrincipal
	if max <= 0 {
		max = 20
	}
	stored, err := w.Store.CreateWebhook(ctx, e, max)
	if err != nil {
		return nil, err
	}
	return &WebhookWithSecret{WebhookEndpoint: *stored, Secret: stored.Secret}, nil
}

// Get returns endpoint id if p owns it.
func (w *Webhooks) Get(ctx context.Context, p Principal, id string) (*WebhookEndpoint, error) {
	e, err := w.Store.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	// Another principal's endpoint does not exist, as far as p can tell.
	if e.UserID != p.UserID {
		return nil, ErrWebhookNotFound
	}
	if err := w.withRole(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// List returns p's endpoints.
func (w *Webhooks) List(ctx context.Context, p Principal, cursor string, limit int) (WebhookPage, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return WebhookPage{}, err
	}
	page, err := w.Store.Webhooks(ctx, p.UserID, cursor, limit)
	if err != nil {
		return WebhookPage{}, err
	}
	if err := w.withRole(ctx, page.Endpoints...); err != nil {
		return WebhookPage{}, err
	}
	return page, nil
}

// Update changes the fields u names.
func (w *Webhooks) Update(ctx context.Context, p Principal, id string, u WebhookUpdate, address string) (out *WebhookEndpoint, err error) {
	defer func() {
		var rawURL string
		if u.URL != nil {
			rawURL = *u.URL
		}
		w.trail().record(ctx, p, "webhook.update", "webhook:"+id, address, err, webhookAuditParams(rawURL, u.Events, u.Enabled))
	}()
	e, err := w.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if u.URL != nil {
		parsed, err := w.checkURL(ctx, *u.URL)
		if err != nil {
			return nil, err
		}
		e.URL = parsed.String()
	}
	if u.Events != nil {
		if e.Events, err = checkEvents(*u.Events); err != nil {
			return nil, err
		}
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description); err != nil {
			return nil, err
		}
		e.Description = *u.Description
	}
	if u.Enabled != nil {
		e.Enabled = *u.Enabled
	}
	out, err = w.Store.UpdateWebhook(ctx, e)
	if err != nil {
		return nil, err
	}
	out.Admin = e.Admin
	return out, nil
}

// Delete removes endpoint id and its delivery log.
func (w *Webhooks) Delete(ctx context.Context, p Principal, id, address string) (err error) {
	defer func() { w.trail().record(ctx, p, "webhook.delete", "webhook:"+id, address, err, nil) }()
	if _, err := w.Get(ctx, p, id); err != nil {
		return err
	}
	return w.Store.DeleteWebhook(ctx, id)
}

// Rotate gives endpoint id a new secret, shown in this answer only; the
// old one keeps signing beside it for 24 hours.
func (w *Webhooks) Rotate(ctx context.Context, p Principal, id, address string) (out *WebhookWithSecret, err error) {
	defer func() { w.trail().record(ctx, p, "webhook.rotate", "webhook:"+id, address, err, nil) }()
	cur, err := w.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	secret := NewWebhookSecret()
	e, err := w.Store.RotateWebhookSecret(ctx, id, secret, w.Now().UTC().Add(previousSecretLifetime).Truncate(time.Second))
	if err != nil {
		return nil, err
	}
	e.Admin = cur.Admin
	return &WebhookWithSecret{WebhookEndpoint: *e, Secret: e.Secret}, nil
}

// Deliveries lists endpoint id's delivery log.
func (w *Webhooks) Deliveries(ctx context.Context, p Principal, id, cursor string, limit int) (DeliveryPage, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return DeliveryPage{}, err
	}
	if _, err := w.Get(ctx, p, id); err != nil {
		return DeliveryPage{}, err
	}
	return w.Store.WebhookDeliveries(ctx, id, cursor, limit)
}

// Resend sends delivery deliveryID of endpoint id again.
func (w *Webhooks) Resend(ctx context.Context, p Principal, id, deliveryID, address string) (d *WebhookDelivery, err error) {
	defer func() {
		w.trail().record(ctx, p, "webhook.resend", "webhook:"+id, address, err, map[string]any{"delivery_id": deliveryID})
	}()
	e, err := w.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if err := checkEnabled(e); err != nil {
		return nil, err
	}
	return w.Sender.Resend(ctx, e, deliveryID)
}

// Test sends a webhook.test event to endpoint id.
func (w *Webhooks) Test(ctx context.Context, p Principal, id, address string) (d *WebhookDelivery, err error) {
	defer func() {
		params := map[string]any{}
		if d != nil {
			params["delivery_id"] = d.ID
		}
		w.trail().record(ctx, p, "webhook.test", "webhook:"+id, address, err, params)
	}()
	e, err := w.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if err := checkEnabled(e); err != nil {
		return nil, err
	}
	return w.Sender.SendTest(ctx, e)
}

func checkEnabled(e *WebhookEndpoint) error {
	if e.Enabled {
		return nil
	}
	msg := "webhook endpoint " + e.ID + " is disabled"
	if e.DisabledReason != "" {
		msg += " (" + e.DisabledReason + ")"
	}
	return Errorf(KindConflict, "webhook_disabled", "%s; enable it first with PATCH {\"enabled\": true}", msg)
}

// checkURL validates a webhook URL: absolute http(s) with a host, and
// allowed by the sender's forgery guard.
func (w *Webhooks) checkURL(ctx context.Context, raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, Invalid("url", "is required: the http(s) URL that receives events")
	}
	if len(raw) > maxWebhookURL {
		return nil, Invalid("url", "must be at most %d characters", maxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Invalid("url", "is not a valid URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, Invalid("url", "must be an http:// or https:// URL, not %q", u.Scheme+":")
	}
	if u.Hostname() == "" {
		return nil, Invalid("url", "must name a host, such as https://example.com/hooks")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return nil, Invalid("url", "must not have a #fragment")
	}
	if w.Sender != nil {
		if err := w.Sender.CheckURL(ctx, u); err != nil {
			if _, ok := errors.AsType[*Error](err); ok {
				return nil, err
			}
			return nil, Invalid("url", "%v", err)
		}
	}
	return u, nil
}

func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, Invalid("events", "must name at least one event: %s", strings.Join(EventTypes(), ", "))
	}
	known := EventTypes()
	var out []string
	for _, e := range events {
		if !slices.Contains(known, e) {
			return nil, Invalid("events", "unknown event %q; use %s", e, strings.Join(known, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkDescription(d string) error {
	if len([]rune(d)) > maxWebhookDescription {
		return Invalid("description", "must be at most %d characters", maxWebhookDescription)
	}
	return nil
}

func webhookTarget(e *WebhookEndpoint) string {
	if e == nil {
		return ""
	}
	return "webhook:" + e.ID
}

// webhookAuditParams records what changed. Only the URL's scheme and host
// are kept: webhook URLs often carry a token in their path or query.
func webhookAuditParams(rawURL string, events *[]string, enabled *bool) map[string]any {
	params := map[string]any{}
	if rawURL != "" {
		if u, err := url.Parse(strings.TrimSpace(rawURL)); err == nil && u.Host != "" {
			params["url_host"] = u.Scheme + "://" + u.Host
		}
	}
	if events != nil {
		params["events"] = *events
	}
	if enabled != nil {
		params["enabled"] = *enabled
	}
	if len(params) == 0 {
		return nil
	}
	return params
}

func (w *Webhooks) trail() auditTrail { return auditTrail{store: w.Store, log: w.Log, now: w.Now} }

// ErrDeliveryEnded: a delivery task found its delivery no longer waiting
// for it (sent, given up, resent as a newer task, or deleted).
var ErrDeliveryEnded = errors.New("export: webhook delivery has ended")
