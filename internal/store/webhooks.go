package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

const webhookColumns = `id, user_id, admin, url, events, description, enabled, disabled_reason,
	secret, previous_secret, previous_secret_expires_at, created_at, updated_at`

func scanWebhook(row pgx.Row) (*export.WebhookEndpoint, error) {
	var (
		e    export.WebhookEndpoint
		prev *string
	)
	err := row.Scan(&e.ID, &e.UserID, &e.Admin, &e.URL, &e.Events, &e.Description, &e.Enabled, &e.DisabledReason,
		&e.Secret, &prev, &e.PreviousSecretExpiresAt, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, export.ErrWebhookNotFound
	}
	if err != nil {
		return nil, err
	}
	e.PreviousSecret = deref(prev)
	if e.PreviousSecret == "" {
		e.PreviousSecretExpiresAt = nil
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	e.PreviousSecretExpiresAt = utcPtr(e.PreviousSecretExpiresAt)
	if e.Events == nil {
		e.Events = []string{}
	}
	return &e, nil
}

func (s *Store) webhooks(ctx context.Context, what, q string, args ...any) ([]*export.WebhookEndpoint, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	out := []*export.WebhookEndpoint{}
	for rows.Next() {
		e, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// CreateWebhook implements export.WebhookStore.
func (s *Store) CreateWebhook(ctx context.Context, e *export.WebhookEndpoint, max int) (*export.WebhookEndpoint, error) {
	var out *export.WebhookEndpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('hubexport:webhooks:' || $1::bigint::text, 0))`, e.UserID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM hubexport.webhook_endpoints WHERE user_id = $1`, e.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return export.Errorf(export.KindConflict, "too_many_webhooks",
				"you already have %d webhook endpoints (the limit is %d); delete one first", n, max)
		}
		var err error
		out, err = scanWebhook(tx.QueryRow(ctx, `INSERT INTO hubexport.webhook_endpoints
			(id, user_id, admin, url, events, description, enabled, secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING `+webhookColumns,
			e.ID, e.UserID, e.Admin, e.URL, e.Events, e.Description, e.Enabled, e.Secret, e.CreatedAt))
		return err
	})
	if err != nil {
		if e, ok := errors.AsType[*export.Error](err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("store: create webhook: %w", err)
	}
	return out, nil
}

// Webhook implements export.WebhookStore.
func (s *Store) Webhook(ctx context.Context, id string) (*export.WebhookEndpoint, error) {
	e, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM hubexport.webhook_endpoints WHERE id = $1`, id))
	if err != nil && !errors.Is(err, export.ErrWebhookNotFound) {
		return nil, fmt.Errorf("store: webhook %s: %w", id, err)
	}
	return e, err
}

// decodeCursor reads a cursor made by encodeCursor: the last id of the
// previous page, which must start with prefix.
func decodeCursor(cursor, prefix string) (string, error) {
	after, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(after), prefix) || !export.IsText(string(after)) {
		return "", export.Invalid("cursor", "is not a cursor this API returned; start again without it")
	}
	return string(after), nil
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Webhooks implements export.WebhookStore.
func (s *Store) Webhooks(ctx context.Context, userID int64, cursor string, limit int) (export.WebhookPage, error) {
	after := "\uffff"
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor, "whk_"); err != nil {
			return export.WebhookPage{}, err
		}
	}
	eps, err := s.webhooks(ctx, "list webhooks", `SELECT `+webhookColumns+` FROM hubexport.webhook_endpoints
		WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, userID, after, limit+1)
	if err != nil {
		return export.WebhookPage{}, err
	}
	page := export.WebhookPage{Endpoints: eps}
	if len(eps) > limit {
		page.Endpoints = eps[:limit]
		page.NextCursor = encodeCursor(eps[limit-1].ID)
	}
	return page, nil
}

// UpdateWebhook implements export.WebhookStore.
func (s *Store) UpdateWebhook(ctx context.Context, e *export.WebhookEndpoint) (*export.WebhookEndpoint, error) {
	out, err := scanWebhook(s.pool.QueryRow(ctx, `UPDATE hubexport.webhook_endpoints SET url = $2, events = $3,
		description = $4, enabled = $5, disabled_reason = CASE WHEN $5 THEN '' ELSE disabled_reason END, updated_at = now()
		WHERE id = $1 RETURNING `+webhookColumns, e.ID, e.URL, e.Events, e.Description, e.Enabled))
	if err != nil && !errors.Is(err, export.ErrWebhookNotFound) {
		return nil, fmt.Errorf("store: update webhook %s: %w", e.ID, err)
	}
	return out, err
}

// DeleteWebhook implements export.WebhookStore. Its deliveries go with it.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM hubexport.webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete webhook %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return export.ErrWebhookNotFound
	}
	return nil
}

// RotateWebhookSecret implements export.WebhookStore.
func (s *Store) RotateWebhookSecret(ctx context.Context, id, secret string, previousUntil time.Time) (*export.WebhookEndpoint, error) {
	out, err := scanWebhook(s.pool.QueryRow(ctx, `UPDATE hubexport.webhook_endpoints SET previous_secret = secret,
		previous_secret_expires_at = $3, secret = $2, updated_at = now()
		WHERE id = $1 RETURNING `+webhookColumns, id, secret, previousUntil))
	if err != nil && !errors.Is(err, export.ErrWebhookNotFound) {
		return nil, fmt.Errorf("store: rotate webhook secret %s: %w", id, err)
	}
	return out, err
}

// DisableWebhook turns endpoint id off, saying why.
func (s *Store) DisableWebhook(ctx context.Context, id, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE hubexport.webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
		WHERE id = $1`, id, reason)
	if err != nil {
		return fmt.Errorf("store: disable webhook %s: %w", id, err)
	}
	return nil
}

// SubscribedWebhooks lists the enabled endpoints subscribed to eventType,
// whoever owns them: which of them an event reaches depends on their
// owners' current roles, which the hub knows.
func (s *Store) SubscribedWebhooks(ctx context.Context, eventType string) ([]*export.WebhookEndpoint, error) {
	return s.webhooks(ctx, "subscribed webhooks", `SELECT `+webhookColumns+` FROM hubexport.webhook_endpoints
		WHERE enabled AND $1 = ANY(events) ORDER BY id`, eventType)
}

const deliveryColumns = `id, endpoint_id, event_type, payload, status, send, next_attempt_at, created_at, updated_at`

func scanDelivery(row pgx.Row) (*export.WebhookDelivery, error) {
	var d export.WebhookDelivery
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventType, &d.Payload, &d.Status, &d.Send, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, export.ErrDeliveryNotFound
	}
	if err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	d.NextAttemptAt = utcPtr(d.NextAttemptAt)
	d.Attempts = []export.WebhookAttempt{}
	return &d, nil
}

// CreateDeliveries records new pending deliveries, all or none.
func (s *Store) CreateDeliveries(ctx context.Context, ds []*export.WebhookDelivery) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, d := range ds {
			if _, err := tx.Exec(ctx, `INSERT INTO hubexport.webhook_deliveries
				(id, endpoint_id, event_type, payload, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5)`,
				d.ID, d.EndpointID, d.EventType, []byte(d.Payload), d.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create webhook deliveries: %w", err)
	}
	return nil
}

// CreateJobDeliveries records the deliveries that announce job jobID's end
// (none when no endpoint listens) and clears the job's notify_pending in
// the same transaction. It returns false, recording nothing, when the job's
// end was already announced.
func (s *Store) CreateJobDeliveries(ctx context.Context, jobID string, ds []*export.WebhookDelivery) (bool, error) {
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE hubexport.jobs SET notify_pending = false WHERE id = $1 AND notify_pending`, jobID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		for _, d := range ds {
			if _, err := tx.Exec(ctx, `INSERT INTO hubexport.webhook_deliveries
				(id, endpoint_id, event_type, payload, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5)`,
				d.ID, d.EndpointID, d.EventType, []byte(d.Payload), d.CreatedAt); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: create deliveries of job %s: %w", jobID, err)
	}
	return created, nil
}

// WebhookDelivery returns delivery id (without its attempts).
func (s *Store) WebhookDelivery(ctx context.Context, id string) (*export.WebhookDelivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM hubexport.webhook_deliveries WHERE id = $1`, id))
	if err != nil && !errors.Is(err, export.ErrDeliveryNotFound) {
		return nil, fmt.Errorf("store: webhook delivery %s: %w", id, err)
	}
	return d, err
}

// WebhookDeliveries implements export.WebhookStore.
func (s *Store) WebhookDeliveries(ctx context.Context, endpointID, cursor string, limit int) (export.DeliveryPage, error) {
	after := "\uffff"
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor, "msg_"); err != nil {
			return export.DeliveryPage{}, err
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM hubexport.webhook_deliveries
		WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, endpointID, after, limit+1)
	if err != nil {
		return export.DeliveryPage{}, fmt.Errorf("store: list webhook deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*export.WebhookDelivery, error) { return scanDelivery(r) })
	if err != nil {
		return export.DeliveryPage{}, fmt.Errorf("store: list webhook deliveries: %w", err)
	}
	page := export.DeliveryPage{Deliveries: ds}
	if len(ds) > limit {
		page.Deliveries = ds[:limit]
		page.NextCursor = encodeCursor(ds[limit-1].ID)
	}
	if len(page.Deliveries) == 0 {
		return page, nil
	}
	byID := map[string]*export.WebhookDelivery{}
	ids := make([]string, len(page.Deliveries))
	for i, d := range page.Deliveries {
		byID[d.ID], ids[i] = d, d.ID
	}
	rows, err = s.pool.Query(ctx, `SELECT delivery_id, attempt, COALESCE(status_code, 0), latency_ms, error, at
		FROM hubexport.webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return export.DeliveryPage{}, fmt.Errorf("store: list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			a  export.WebhookAttempt
		)
		if err := rows.Scan(&id, &a.Attempt, &a.StatusCode, &a.LatencyMS, &a.Error, &a.At); err != nil {
			return export.DeliveryPage{}, fmt.Errorf("store: list webhook attempts: %w", err)
		}
		a.At = a.At.UTC()
		byID[id].Attempts = append(byID[id].Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return export.DeliveryPage{}, fmt.Errorf("store: list webhook attempts: %w", err)
	}
	return page, nil
}

// ResendDelivery makes delivery id of endpointID pending again as a new
// send, and returns it.
func (s *Store) ResendDelivery(ctx context.Context, endpointID, id string) (*export.WebhookDelivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE hubexport.webhook_deliveries SET status = 'pending', send = send + 1,
		next_attempt_at = NULL, updated_at = now() WHERE id = $1 AND endpoint_id = $2 RETURNING `+deliveryColumns, id, endpointID))
	if err != nil && !errors.Is(err, export.ErrDeliveryNotFound) {
		return nil, fmt.Errorf("store: resend webhook delivery %s: %w", id, err)
	}
	return d, err
}

// BeginDeliveryAttempt numbers the next attempt of send `send` of delivery
// id. It returns export.ErrDeliveryEnded when that send is no longer
// pending.
func (s *Store) BeginDeliveryAttempt(ctx context.Context, id string, send int) (*export.WebhookDelivery, int, error) {
	var attempt int
	d, err := scanDelivery(leadingColumn{s.pool.QueryRow(ctx, `UPDATE hubexport.webhook_deliveries SET attempts = attempts + 1, updated_at = now()
		WHERE id = $1 AND send = $2 AND status = 'pending' RETURNING attempts, `+deliveryColumns, id, send), &attempt})
	if errors.Is(err, export.ErrDeliveryNotFound) {
		return nil, 0, export.ErrDeliveryEnded
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: begin webhook attempt %s: %w", id, err)
	}
	return d, attempt, nil
}

// leadingColumn scans a row's first column into dest and the rest as the
// wrapped scanner asks.
type leadingColumn struct {
	pgx.Row
	dest any
}

func (r leadingColumn) Scan(dest ...any) error { return r.Row.Scan(append([]any{r.dest}, dest...)...) }

// FinishDeliveryAttempt records attempt a of send `send` of delivery id and
// moves the delivery to status (pending: tried again at next).
func (s *Store) FinishDeliveryAttempt(ctx context.Context, id string, send int, a export.WebhookAttempt, status string, next *time.Time) error {
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO hubexport.webhook_attempts (delivery_id, attempt, status_code, latency_ms, error, at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, id, a.Attempt, code, a.LatencyMS, a.Error, a.At); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE hubexport.webhook_deliveries SET status = $3, next_attempt_at = $4, updated_at = now()
			WHERE id = $1 AND send = $2 AND status = 'pending'`, id, send, status, next)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record webhook attempt %s: %w", id, err)
	}
	return nil
}

// DueDeliveries lists pending deliveries whose next attempt was due at
// least quiet ago: each should have a task waiting in Redis.
func (s *Store) DueDeliveries(ctx context.Context, quiet time.Duration, limit int) ([]*export.WebhookDelivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM hubexport.webhook_deliveries
		WHERE status = 'pending' AND COALESCE(next_attempt_at, created_at) < now() - make_interval(secs => $1)
		AND updated_at < now() - make_interval(secs => $1)
		ORDER BY COALESCE(next_attempt_at, created_at) LIMIT $2`, quiet.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due webhook deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*export.WebhookDelivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("store: due webhook deliveries: %w", err)
	}
	return ds, nil
}

// AbandonDelivery fails send `send` of delivery id without another
// attempt (its task was given up on).
func (s *Store) AbandonDelivery(ctx context.Context, id string, send int) error {
	_, err := s.pool.Exec(ctx, `UPDATE hubexport.webhook_deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = now()
		WHERE id = $1 AND send = $2 AND status = 'pending'`, id, send)
	if err != nil {
		return fmt.Errorf("store: abandon webhook delivery %s: %w", id, err)
	}
	return nil
}
