// Package jobs runs exports on Asynq: the task types (one file each, with
// its Type constant, payload, constructor and handler), the shared attempt
// lifecycle (job lease, state changes, streaming into storage with a
// SHA-256), the worker server, the reconciler that re-enqueues jobs whose
// task Redis lost, the periodic maintenance (artifact expiry, sweeping
// crashed workers' leftovers), and webhook deliveries (one task each, on
// their own queue and retry schedule, with a pump that re-queues deliveries
// Redis never got), and backup schedules (the periodic task manager's
// provider over the schedules table, and the tick and check tasks of the
// schedules queue, which only scheduler processes serve).
//
// Job state lives in PostgreSQL (through JobStore); Redis only carries
// tasks and leases, so losing Redis delays jobs but never loses them.
// Handlers are safe to run twice and stop promptly when their context ends.
package jobs
