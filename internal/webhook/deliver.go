package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hubexport/hubexport/internal/export"
)

// RequestTimeout is how long one attempt waits for the receiver's answer.
const RequestTimeout = 15 * time.Second

// Schedule is the wait before each retry (Standard Webhooks' example):
// the first attempt goes out at once, then 5 s, 5 min, 30 min, 2 h, 5 h,
// 10 h, 14 h, 20 h and 24 h after each failure.
var Schedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// MaxRetries is how many times a failed delivery is retried.
var MaxRetries = len(Schedule)

// maxRetryAfter caps what a receiver's Retry-After may ask for.
const maxRetryAfter = 24 * time.Hour

// RetryDelay is the wait before retry number retried+1: the schedule's,
// or longer when the receiver asked for more with Retry-After.
func RetryDelay(retried int, retryAfter time.Duration) time.Duration {
	d := Schedule[min(max(retried, 0), len(Schedule)-1)]
	return max(d, min(retryAfter, maxRetryAfter))
}

// Outcome is what an attempt means for the delivery's task.
type Outcome struct {
	// Done: nothing more to send (delivered, given up, the endpoint gone
	// or disabled, or the send superseded by a resend).
	Done bool
	// RetryIn is the wait before the next attempt when not Done.
	RetryIn time.Duration
	// Result is how the request went: "succeeded", "failed", or "" when
	// none was made.
	Result string
}

// Deliverer makes delivery attempts.
type Deliverer struct {
	Store Store
	// Owners gives endpoint owners' current roles and states, checked
	// before every attempt.
	Owners export.Owners
	Client *http.Client // Guard.Client(RequestTimeout)
	Log    *slog.Logger
	Now    func() time.Time
	// UserAgent names the sender; default "hubexport-webhooks/1".
	UserAgent string
}

// Attempt sends send `send` of delivery id once and records the attempt.
// retried is how many times this send was retried before; last says no
// retry follows a failure. An error means the attempt could not be made or
// recorded (the store is unreachable): try again later.
func (d *Deliverer) Attempt(ctx context.Context, id string, send, retried int, last bool) (Outcome, error) {
	del, n, err := d.Store.BeginDeliveryAttempt(ctx, id, send)
	if errors.Is(err, export.ErrDeliveryEnded) {
		return Outcome{Done: true}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	log := d.Log.With("delivery_id", id, "endpoint_id", del.EndpointID, "event_type", del.EventType, "attempt", n)
	bg := context.WithoutCancel(ctx)
	ep, err := d.Store.Webhook(ctx, del.EndpointID)
	if errors.Is(err, export.ErrWebhookNotFound) {
		return Outcome{Done: true}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	now := d.Now()
	a := export.WebhookAttempt{Attempt: n, At: now.UTC()}
	if !ep.Enabled {
		a.Error = "not sent: the endpoint is disabled"
		return Outcome{Done: true}, d.Store.FinishDeliveryAttempt(bg, id, send, a, export.DeliveryFailed, nil)
	}
	// The owner's role and state now, not when the event was recorded.
	states, err := d.Owners.OwnerStates(ctx, []int64{ep.UserID})
	if err != nil {
		return Outcome{}, fmt.Errorf("webhook: endpoint owner: %w", err)
	}
	owner := states[ep.UserID]
	if owner.Inactive != "" {
		reason := owner.StopReason(ep.UserID)
		if err := d.Store.DisableWebhook(bg, ep.ID, reason); err != nil {
			return Outcome{}, err
		}
		log.WarnContext(ctx, "webhook_endpoint_disabled", "reason", "owner "+owner.Inactive)
		a.Error = "not sent: " + reason
		return Outcome{Done: true}, d.Store.FinishDeliveryAttempt(bg, id, send, a, export.DeliveryFailed, nil)
	}
	if !owner.Admin {
		own, err := d.aboutOwner(ctx, ep, del)
		if err != nil {
			return Outcome{}, err
		}
		if !own {
			a.Error = "not sent: " + export.NotAdminReason
			log.InfoContext(ctx, "webhook_delivery_out_of_scope")
			return Outcome{Done: true}, d.Store.FinishDeliveryAttempt(bg, id, send, a, export.DeliveryFailed, nil)
		}
	}

	code, retryAfter, sendErr := d.post(ctx, ep, del, now)
	a.LatencyMS = d.Now().Sub(now).Milliseconds()
	a.StatusCode = code
	if sendErr != nil {
		a.Error = sendErr.shown(owner.Admin)
	}
	status := export.DeliveryPending
	switch {
	case sendErr == nil:
		status = export.DeliverySucceeded
	case code == http.StatusGone:
		status = export.DeliveryFailed
		reason := "the receiver answered 410 Gone on " + now.UTC().Format(time.RFC3339)
		if err := d.Store.DisableWebhook(bg, ep.ID, reason); err != nil {
			return Outcome{}, err
		}
		log.WarnContext(ctx, "webhook_endpoint_disabled", "reason", "410 Gone")
	default:
		if last {
			status = export.DeliveryFailed
		}
	}
	var next *time.Time
	out := Outcome{Done: status != export.DeliveryPending, Result: "failed"}
	if sendErr == nil {
		out.Result = "succeeded"
	}
	if !out.Done {
		out.RetryIn = RetryDelay(retried, retryAfter)
		t := now.Add(out.RetryIn).UTC()
		next = &t
	}
	if err := d.Store.FinishDeliveryAttempt(bg, id, send, a, status, next); err != nil {
		return Outcome{}, err
	}
	switch status {
	case export.DeliverySucceeded:
		log.InfoContext(ctx, "webhook_delivered", "status_code", code, "latency_ms", a.LatencyMS)
	case export.DeliveryFailed:
		log.WarnContext(ctx, "webhook_delivery_failed", "status_code", code, "latency_ms", a.LatencyMS, "error", sendErr.detail)
	default:
		log.InfoContext(ctx, "webhook_attempt_failed", "status_code", code, "latency_ms", a.LatencyMS, "error", sendErr.detail,
			"retry_in_ms", out.RetryIn.Milliseconds())
	}
	return out, nil
}

// aboutOwner reports whether delivery del is about the endpoint owner's
// own things: a test of the endpoint, or the end of one of their jobs.
// Anything else (another user's job, an overdue backup) is for
// administrators.
func (d *Deliverer) aboutOwner(ctx context.Context, ep *export.WebhookEndpoint, del *export.WebhookDelivery) (bool, error) {
	switch del.EventType {
	case export.EventWebhookTest:
		return true, nil
	case export.EventExportSucceeded, export.EventExportFailed, export.EventExportCanceled:
	default:
		return false, nil
	}
	var ev struct {
		Data struct {
			JobID string `json:"job_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(del.Payload, &ev); err != nil || ev.Data.JobID == "" {
		return false, nil
	}
	j, err := d.Store.Job(ctx, ev.Data.JobID)
	if errors.Is(err, export.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return j.UserID == ep.UserID, nil
}

// attemptError is a failed attempt described twice. public is a fixed
// reason (the status code and its standard text, or the kind of transport
// failure): it never carries what the receiver sent, so a delivery log
// cannot be used to read services the sender can reach. detail adds the
// receiver's status line and the start of its body, or the transport
// error; it is logged, and shown on administrators' endpoints.
type attemptError struct{ public, detail string }

func (e *attemptError) Error() string { return e.detail }

// shown is the text recorded in the delivery log.
func (e *attemptError) shown(detail bool) string {
	if detail {
		return e.detail
	}
	return e.public
}

func ourError(msg string) *attemptError { return &attemptError{public: msg, detail: msg} }

// post sends one signed request. It returns the status code (0 without an
// answer), the receiver's Retry-After, and an error for anything but a 2xx.
func (d *Deliverer) post(ctx context.Context, ep *export.WebhookEndpoint, del *export.WebhookDelivery, now time.Time) (int, time.Duration, *attemptError) {
	sig, err := SignatureHeader(ep.SigningSecrets(now), del.ID, now, del.Payload)
	if err != nil {
		return 0, 0, ourError(err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(del.Payload))
	if err != nil {
		return 0, 0, ourError(fmt.Sprintf("bad endpoint URL: %v", err))
	}
	ua := d.UserAgent
	if ua == "" {
		ua = "hubexport-webhooks/1"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	req.Header.Set(HeaderID, del.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, 0, transportError(err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	public := fmt.Sprintf("the receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	detail := "the receiver answered " + resp.Status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		const hint = " (redirects are not followed; use the final URL)"
		public += hint
		detail += hint
	}
	if s := snippet(head); s != "" {
		detail += ": " + s
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), now), &attemptError{public: public, detail: detail}
}

// transportError describes a request that got no HTTP answer, without its
// URL, which may carry a token.
func transportError(err error) *attemptError {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return ourError(fmt.Sprintf("no answer within %s", RequestTimeout))
		}
		err = ue.Err
	}
	var (
		re      *RefusedError
		dnsErr  *net.DNSError
		opErr   *net.OpError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		certErr *tls.CertificateVerificationError
	)
	public := "no valid HTTP answer"
	switch {
	case errors.As(err, &re):
		public = "refused: the host is a " + re.Reason + " address; deliveries to private networks are refused unless WEBHOOK_ALLOW_PRIVATE=true"
	case errors.As(err, &dnsErr):
		public = "the host could not be resolved"
	case errors.Is(err, syscall.ECONNREFUSED):
		public = "connection refused"
	case errors.As(err, &recErr), errors.As(err, &alert), errors.As(err, &certErr):
		public = "the TLS handshake failed"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		public = "could not connect"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		public = "the connection was closed before an answer"
	}
	return &attemptError{public: public, detail: err.Error()}
}

// snippet is the start of a response body, printable and on one line.
func snippet(b []byte) string {
	if !utf8.Valid(b) {
		return ""
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
