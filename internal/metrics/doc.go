// Package metrics owns hubexport's Prometheus registry: the metric
// definitions, the small methods the rest of the program calls when
// something worth counting happens (a job ended, a lock was waited for, a
// webhook was delivered, a scheduled backup succeeded), the active-jobs
// gauge read from PostgreSQL on each scrape, and the /metrics handler.
//
// It is the only package that imports the Prometheus client. jobs reports
// through its own small interface, web mounts Handler as a plain
// http.Handler, and cmd/hubexport registers the collectors that need
// concrete dependencies (Asynq's queue metrics). It must not import Asynq,
// pgx or web.
package metrics
