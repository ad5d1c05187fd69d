// Package web is hubexport's HTTP API, built on Gin.
//
// It owns the transport: routing, request ids, access logging, panic
// recovery, extracting the caller's token and turning it into a principal,
// decoding request bodies and query strings, server-sent events, readiness
// checks, and the one mapping from export.Error kinds to HTTP statuses
// (errors.go). Handlers parse, call export.Service with the request's
// context, and write the answer. It also serves the web page: the files
// under ui/, embedded, at / and /ui/ (page.go).
//
// It must not hold business rules (who may ask for what, which parameters
// are valid, how jobs move between states): those live in internal/export.
// It talks only to internal/export types and standard-library interfaces,
// and must never import Asynq, pgx, the AWS SDK or the storage package.
package web
