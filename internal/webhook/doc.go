// Package webhook sends hubexport's events to webhook endpoints, signed per
// Standard Webhooks v1.
//
// It owns the event payloads (thin: ids, a result summary and API links,
// never a file or a presigned URL), matching events to endpoints, the
// signatures (HMAC-SHA256 over "id.timestamp.body", one per live secret),
// the retry schedule, and the HTTP client with its server-side request
// forgery guard, which checks every address at dial time so a DNS answer
// that changes after validation cannot reach a private network.
//
// Deliveries are recorded in PostgreSQL before their task is queued, so an
// unreachable Redis delays an event but never loses it. The package never
// logs a secret, a signature or a full endpoint URL (URLs often carry a
// token), and imports neither Asynq nor pgx: the queue and the store come in
// through the interfaces declared here.
package webhook
