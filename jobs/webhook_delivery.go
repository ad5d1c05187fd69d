package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/webhook"
)

// TypeWebhookDelivery is the task type of one webhook delivery. It is a
// wire contract: never rename it while tasks may be queued.
const TypeWebhookDelivery = "webhook:deliver"

// QueueWebhooks carries webhook deliveries, apart from the exports so a
// long export queue does not hold notifications back.
const QueueWebhooks = "webhooks"

// webhookTaskTimeout leaves room after the receiver's 15 s to record the
// attempt.
const webhookTaskTimeout = webhook.RequestTimeout + 10*time.Second

// webhookDeliveryPayload names one send of a delivery; a resend is a new
// send, and a task of an older send finds nothing to do.
type webhookDeliveryPayload struct {
	DeliveryID string `json:"delivery_id"`
	Send       int    `json:"send"`
}

func webhookTaskID(deliveryID string, send int) string {
	return deliveryID + ":" + strconv.Itoa(send)
}

// NewWebhookDeliveryTask builds the task of send `send` of delivery
// deliveryID: retried on the Standard Webhooks schedule (RetryDelayFunc in
// server.go dispatches on the type).
func NewWebhookDeliveryTask(deliveryID string, send int) *asynq.Task {
	b, _ := json.Marshal(webhookDeliveryPayload{DeliveryID: deliveryID, Send: send})
	return asynq.NewTask(TypeWebhookDelivery, b, asynq.Queue(QueueWebhooks), asynq.MaxRetry(webhook.MaxRetries),
		asynq.Timeout(webhookTaskTimeout), asynq.TaskID(webhookTaskID(deliveryID, send)))
}

// EnqueueDelivery queues a delivery send (webhook.Queue). A task already
// queued for it is not an error.
func (c *Client) EnqueueDelivery(ctx context.Context, deliveryID string, send int) error {
	_, err := c.Client.EnqueueContext(ctx, NewWebhookDeliveryTask(deliveryID, send))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: enqueue webhook delivery %s: %w", deliveryID, err)
	}
	return nil
}

// WebhookAttempter makes one delivery attempt (webhook.Deliverer).
type WebhookAttempter interface {
	Attempt(ctx context.Context, id string, send, retried int, last bool) (webhook.Outcome, error)
}

// WebhookDeliveryHandler runs webhook delivery tasks.
type WebhookDeliveryHandler struct {
	Deliverer WebhookAttempter
	// Metrics, if set, counts attempts by result.
	Metrics Metrics
}

// webhookRetry asks for the next attempt after a set wait.
type webhookRetry struct{ after time.Duration }

func (e *webhookRetry) Error() string {
	return "jobs: webhook delivery failed; next attempt in " + e.after.String()
}

// ProcessTask implements asynq.Handler.
func (h *WebhookDeliveryHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p webhookDeliveryPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.DeliveryID == "" {
		return fmt.Errorf("jobs: bad %s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	out, err := h.Deliverer.Attempt(ctx, p.DeliveryID, p.Send, retried, retried >= maxRetry)
	if err != nil {
		return fmt.Errorf("jobs: webhook delivery %s: %w", p.DeliveryID, err)
	}
	if out.Result != "" && h.Metrics != nil {
		h.Metrics.WebhookDelivered(out.Result)
	}
	if out.Done {
		// Delivered or given up: the outcome is in PostgreSQL, so the task
		// completes (an archived task would only take room in Redis).
		return nil
	}
	return &webhookRetry{after: out.RetryIn}
}

// webhookRetryDelay is RetryDelayFunc for delivery tasks: the wait the
// attempt asked for, or the schedule's when the attempt could not be made.
func webhookRetryDelay(n int, err error) time.Duration {
	if r, ok := errors.AsType[*webhookRetry](err); ok {
		return r.after
	}
	return webhook.RetryDelay(n, 0)
}

// DeliveryStore is what the delivery pump reads (internal/store).
type DeliveryStore interface {
	// DueDeliveries lists pending deliveries whose next attempt was due
	// at least quiet ago.
	DueDeliveries(ctx context.Context, quiet time.Duration, limit int) ([]*export.WebhookDelivery, error)
	// AbandonDelivery fails a send whose task Asynq gave up on.
	AbandonDelivery(ctx context.Context, id string, send int) error
	// JobsToNotify lists ended jobs not yet announced although they ended
	// at least quiet ago.
	JobsToNotify(ctx context.Context, quiet time.Duration, limit int) ([]*export.Job, error)
}

// DeliveryPump makes PostgreSQL's view of webhook deliveries win, as the
// Reconciler does for jobs: a pending delivery whose attempt is overdue
// and has no task (Redis was down when it was recorded, or lost it) is
// queued again. Running it on several instances at once is safe.
type DeliveryPump struct {
	Store     DeliveryStore
	Queue     *Client
	Inspector *asynq.Inspector
	Log       *slog.Logger
	Interval  time.Duration
	// Quiet: deliveries due more recently than this are left to their task,
	// and jobs that ended more recently to their worker.
	Quiet time.Duration
	// Notify announces jobs whose worker died between ending them and
	// announcing them; nil: none are re-driven.
	Notify export.Notifier
}

// Run pumps every Interval until ctx ends.
func (p *DeliveryPump) Run(ctx context.Context) {
	everyInterval(ctx, p.Interval, p.Log, "webhook_pump_failed", func(ctx context.Context) error {
		_, err := p.Once(ctx)
		return err
	})
}

// Once makes one pass and returns how many deliveries it queued.
func (p *DeliveryPump) Once(ctx context.Context) (int, error) {
	if p.Notify != nil {
		ended, err := p.Store.JobsToNotify(ctx, p.Quiet, 100)
		if err != nil {
			return 0, err
		}
		for _, j := range ended {
			p.Log.InfoContext(ctx, "job_announced_late", "job_id", j.ID, "status", j.Status)
			p.Notify.JobEnded(ctx, j)
		}
	}
	ds, err := p.Store.DueDeliveries(ctx, p.Quiet, 500)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, d := range ds {
		info, err := p.Inspector.GetTaskInfo(QueueWebhooks, webhookTaskID(d.ID, d.Send))
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			if err := p.Queue.EnqueueDelivery(ctx, d.ID, d.Send); err != nil {
				return queued, err
			}
			queued++
			p.Log.InfoContext(ctx, "webhook_delivery_reenqueued", "delivery_id", d.ID, "endpoint_id", d.EndpointID)
		case err != nil:
			return queued, err
		case info.State == asynq.TaskStateArchived:
			if err := p.Store.AbandonDelivery(ctx, d.ID, d.Send); err != nil {
				return queued, err
			}
			p.Log.WarnContext(ctx, "webhook_delivery_failed", "delivery_id", d.ID, "endpoint_id", d.EndpointID, "reason", "task archived")
		}
	}
	return queued, nil
}

// notifyEnded tells r.Notify that job id has ended, as PostgreSQL now
// records it.
func (r *Runner) notifyEnded(ctx context.Context, id string) {
	notifyEnded(ctx, r.Store, r.Notify, r.Log, id)
}

func notifyEnded(ctx context.Context, st JobStore, n export.Notifier, log *slog.Logger, id string) {
	if n == nil {
		return
	}
	bg := context.WithoutCancel(ctx)
	j, err := st.Job(bg, id)
	if err != nil {
		log.ErrorContext(ctx, "webhook_emit_failed", "job_id", id, "error", err)
		return
	}
	n.JobEnded(bg, j)
}
