package main

import (
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/webhook"
	"github.com/hubexport/hubexport/jobs"
)

func newWebhookID() string { return "whk_" + ulid.Make().String() }

// newMessageID makes webhook message ids (webhook-id): no '.' allowed.
func newMessageID() string { return "msg_" + ulid.Make().String() }

// webhooks are the webhook parts the roles share.
type webhooks struct {
	guard      *webhook.Guard
	dispatcher *webhook.Dispatcher
	owners     export.Owners
	store      *deps
	log        *slog.Logger
}

func newWebhooks(cfg *config.Config, d *deps, owners export.Owners, queue *jobs.Client, log *slog.Logger) *webhooks {
	guard := &webhook.Guard{AllowPrivate: cfg.WebhookAllowPrivate}
	return &webhooks{
		guard: guard,
		dispatcher: &webhook.Dispatcher{Store: d.store, Queue: queue, Guard: guard, Owners: owners, Log: log, Now: time.Now,
			NewID: newMessageID, PublicURL: cfg.PublicURL},
		owners: owners,
		store:  d,
		log:    log,
	}
}

// handler is the worker's delivery task handler; m counts attempts.
func (w *webhooks) handler(m jobs.Metrics) *jobs.WebhookDeliveryHandler {
	return &jobs.WebhookDeliveryHandler{Metrics: m, Deliverer: &webhook.Deliverer{
		Store: w.store.store, Owners: w.owners, Client: w.guard.Client(webhook.RequestTimeout), Log: w.log, Now: time.Now,
	}}
}

// api is the endpoint management the API serves.
func (w *webhooks) api() *export.Webhooks {
	return &export.Webhooks{Store: w.store.store, Sender: w.dispatcher, Owners: w.owners, Log: w.log, NewID: newWebhookID, Now: time.Now}
}
