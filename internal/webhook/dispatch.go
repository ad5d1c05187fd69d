package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Store keeps endpoints and deliveries (internal/store).
type Store interface {
	Webhook(ctx context.Context, id string) (*export.WebhookEndpoint, error)
	// SubscribedWebhooks lists the enabled endpoints subscribed to
	// eventType, whoever owns them.
	SubscribedWebhooks(ctx context.Context, eventType string) ([]*export.WebhookEndpoint, error)
	DisableWebhook(ctx context.Context, id, reason string) error
	// Job returns a job (its owner decides who hears of it), or
	// export.ErrNotFound.
	Job(ctx context.Context, id string) (*export.Job, error)
	// CreateDeliveries records pending deliveries, all or none.
	CreateDeliveries(ctx context.Context, ds []*export.WebhookDelivery) error
	// CreateJobDeliveries records the deliveries announcing job jobID's end
	// and clears its notify_pending at once; false when already announced.
	CreateJobDeliveries(ctx context.Context, jobID string, ds []*export.WebhookDelivery) (bool, error)
	// ResendDelivery makes a delivery of endpointID pending again as a
	// new send.
	ResendDelivery(ctx context.Context, endpointID, id string) (*export.WebhookDelivery, error)
	// BeginDeliveryAttempt numbers the next attempt; export.ErrDeliveryEnded
	// when the send is no longer pending.
	BeginDeliveryAttempt(ctx context.Context, id string, send int) (*export.WebhookDelivery, int, error)
	// FinishDeliveryAttempt records the attempt and the delivery's new
	// status (pending: tried again at next).
	FinishDeliveryAttempt(ctx context.Context, id string, send int, a export.WebhookAttempt, status string, next *time.Time) error
}

// Queue queues delivery tasks (jobs). Queuing a send that is already
// queued is not an error.
type Queue interface {
	EnqueueDelivery(ctx context.Context, deliveryID string, send int) error
}

// Dispatcher turns events into deliveries: it records one pending delivery
// per matching endpoint, then queues each. It implements export.Notifier
// and export.WebhookSender.
type Dispatcher struct {
	Store Store
	Queue Queue
	Guard *Guard
	// Owners gives endpoint owners' current roles and states: an event
	// about a user's things reaches that user's endpoints and those of
	// every owner who is an administrator now.
	Owners export.Owners
	Log    *slog.Logger
	Now    func() time.Time
	// NewID makes message ids: "msg_" + a sortable unique id, no '.'.
	NewID func() string
	// PublicURL is how clients reach the API; payload links start with it.
	PublicURL string
}

var (
	_ export.Notifier      = (*Dispatcher)(nil)
	_ export.WebhookSender = (*Dispatcher)(nil)
)

// Event is the JSON body of every delivery.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// JobData is the data of the export.* events: what ended and where to
// read more, never the file itself.
type JobData struct {
	JobID     string         `json:"job_id"`
	JobType   string         `json:"job_type"`
	Status    string         `json:"status"`
	Result    *ResultSummary `json:"result"`
	ErrorCode *string        `json:"error_code"`
	Links     Links          `json:"links"`
}

// ResultSummary describes a succeeded job's file.
type ResultSummary struct {
	Filename  string `json:"filename"`
	SizeBytes int64  `json:"size_bytes"`
	SHA256    string `json:"sha256"`
	Rows      int64  `json:"rows"`
}

// Links are API URLs; both need the caller's token.
type Links struct {
	Self     string `json:"self"`
	Download string `json:"download,omitempty"`
}

// JobEnded implements export.Notifier: it emits the job's event to the
// owner's endpoints and every admin endpoint. The deliveries are recorded
// in the transaction that clears the job's notify_pending, so a job is
// announced once even when both its worker and the delivery pump (which
// re-drives jobs whose worker died before this ran) call it.
func (d *Dispatcher) JobEnded(ctx context.Context, j *export.Job) {
	typ := export.EventFor(j.Status)
	if typ == "" {
		// Nothing to announce (the job has since expired): settle it.
		if _, err := d.Store.CreateJobDeliveries(ctx, j.ID, nil); err != nil {
			d.Log.ErrorContext(ctx, "webhook_emit_failed", "job_id", j.ID, "error", err)
		}
		return
	}
	if err := d.jobEnded(ctx, j, typ); err != nil {
		d.Log.ErrorContext(ctx, "webhook_emit_failed", "event_type", typ, "job_id", j.ID, "error", err)
	}
}

func (d *Dispatcher) jobEnded(ctx context.Context, j *export.Job, typ string) error {
	eps, err := d.match(ctx, j.UserID, typ)
	if err != nil {
		return err
	}
	ds, err := d.build(eps, typ, d.jobData(j))
	if err != nil {
		return err
	}
	created, err := d.Store.CreateJobDeliveries(ctx, j.ID, ds)
	if err != nil || !created {
		return err
	}
	for _, del := range ds {
		d.enqueue(ctx, del)
	}
	return nil
}

func (d *Dispatcher) jobData(j *export.Job) JobData {
	self := d.PublicURL + "/api/v1/exports/" + url.PathEscape(j.ID)
	data := JobData{JobID: j.ID, JobType: string(j.Type), Status: string(j.Status), Links: Links{Self: self}}
	if j.Status == export.StatusSucceeded && j.Result != nil {
		data.Result = &ResultSummary{Filename: j.Result.Filename, SizeBytes: j.Result.SizeBytes, SHA256: j.Result.SHA256, Rows: j.Result.Rows}
		data.Links.Download = self + "/download"
	}
	if j.Error != nil && j.Status != export.StatusSucceeded {
		code := j.Error.Code
		data.ErrorCode = &code
	}
	return data
}

// Emit sends an event of type typ about owner's things (owner: a user id,
// or export.AdminTokenUserID) to the enabled endpoints subscribed to it:
// owner's own and every admin endpoint. data must encode as JSON. The
// deliveries are durable once Emit returns nil; a failure to queue them
// only delays them.
func (d *Dispatcher) Emit(ctx context.Context, owner int64, typ string, data any) error {
	eps, err := d.match(ctx, owner, typ)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return nil
	}
	_, err = d.deliver(ctx, eps, typ, data)
	return err
}

// match lists the endpoints an event of type typ about owner's things
// reaches: the enabled, subscribed endpoints of owner and of every owner
// who is an administrator now. Endpoints whose owner was deleted, disabled
// or expired in the hub are stopped on the way, saying why.
func (d *Dispatcher) match(ctx context.Context, owner int64, typ string) ([]*export.WebhookEndpoint, error) {
	eps, err := d.Store.SubscribedWebhooks(ctx, typ)
	if err != nil || len(eps) == 0 {
		return nil, err
	}
	ids := make([]int64, 0, len(eps))
	for _, ep := range eps {
		ids = append(ids, ep.UserID)
	}
	states, err := d.Owners.OwnerStates(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("webhook: endpoint owners: %w", err)
	}
	var out []*export.WebhookEndpoint
	for _, ep := range eps {
		st := states[ep.UserID]
		if st.Inactive != "" {
			if err := d.Store.DisableWebhook(ctx, ep.ID, st.StopReason(ep.UserID)); err != nil {
				return nil, err
			}
			d.Log.WarnContext(ctx, "webhook_endpoint_disabled", "endpoint_id", ep.ID, "reason", "owner "+st.Inactive)
			continue
		}
		if ep.UserID == owner || st.Admin {
			out = append(out, ep)
		}
	}
	return out, nil
}

// deliver records one delivery of the event per endpoint, then queues them.
func (d *Dispatcher) deliver(ctx context.Context, eps []*export.WebhookEndpoint, typ string, data any) ([]*export.WebhookDelivery, error) {
	ds, err := d.build(eps, typ, data)
	if err != nil {
		return nil, err
	}
	if err := d.Store.CreateDeliveries(ctx, ds); err != nil {
		return nil, err
	}
	for _, del := range ds {
		d.enqueue(ctx, del)
	}
	return ds, nil
}

// build makes one pending delivery of the event per endpoint.
func (d *Dispatcher) build(eps []*export.WebhookEndpoint, typ string, data any) ([]*export.WebhookDelivery, error) {
	if len(eps) == 0 {
		return nil, nil
	}
	now := d.Now().UTC()
	body, err := json.Marshal(Event{Type: typ, Timestamp: now.Truncate(time.Millisecond), Data: data})
	if err != nil {
		return nil, fmt.Errorf("webhook: encode %s event: %w", typ, err)
	}
	ds := make([]*export.WebhookDelivery, len(eps))
	for i, ep := range eps {
		ds[i] = &export.WebhookDelivery{ID: d.NewID(), EndpointID: ep.ID, EventType: typ, Status: export.DeliveryPending,
			Payload: body, Attempts: []export.WebhookAttempt{}, CreatedAt: now, UpdatedAt: now}
	}
	return ds, nil
}

func (d *Dispatcher) enqueue(ctx context.Context, del *export.WebhookDelivery) {
	if err := d.Queue.EnqueueDelivery(ctx, del.ID, del.Send); err != nil {
		// The delivery is in PostgreSQL: the delivery pump queues it later.
		d.Log.WarnContext(ctx, "webhook_enqueue_deferred", "delivery_id", del.ID, "endpoint_id", del.EndpointID, "error", err)
	}
}

// CheckURL implements export.WebhookSender.
func (d *Dispatcher) CheckURL(ctx context.Context, u *url.URL) error {
	if d.Guard == nil {
		return nil
	}
	return d.Guard.CheckURL(ctx, u)
}

// TestData is the data of a webhook.test event.
type TestData struct {
	EndpointID string `json:"endpoint_id"`
	Message    string `json:"message"`
}

// SendTest implements export.WebhookSender.
func (d *Dispatcher) SendTest(ctx context.Context, e *export.WebhookEndpoint) (*export.WebhookDelivery, error) {
	ds, err := d.deliver(ctx, []*export.WebhookEndpoint{e}, export.EventWebhookTest,
		TestData{EndpointID: e.ID, Message: "a test event from hubexport; check its signature as you would any other"})
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// Resend implements export.WebhookSender: the same message (id and body)
// goes out again, freshly timestamped and signed.
func (d *Dispatcher) Resend(ctx context.Context, e *export.WebhookEndpoint, deliveryID string) (*export.WebhookDelivery, error) {
	del, err := d.Store.ResendDelivery(ctx, e.ID, deliveryID)
	if err != nil {
		if errors.Is(err, export.ErrDeliveryNotFound) {
			return nil, export.ErrDeliveryNotFound
		}
		return nil, err
	}
	d.enqueue(ctx, del)
	return del, nil
}
