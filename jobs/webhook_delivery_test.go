package jobs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

type recordingNotifier struct {
	mu    sync.Mutex
	ended []*export.Job
}

func (n *recordingNotifier) JobEnded(_ context.Context, j *export.Job) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ended = append(n.ended, j)
}

// An attempt that ends its job tells the notifier, with the job as
// PostgreSQL records it.
func TestRunnerNotifiesEndedJobs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := &recordingNotifier{}
	f.runner.Notify = n

	ok := f.newJob(t, `{}`)
	if err := f.runner.Run(ctx, task(ok.ID), lines(2, 0)); err != nil {
		t.Fatal(err)
	}
	bad := f.newJob(t, `{}`)
	_ = f.runner.Run(ctx, task(bad.ID), func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
		return 0, export.Invalid("params.x", "is wrong")
	})

	if len(n.ended) != 2 {
		t.Fatalf("notified %d jobs, want 2", len(n.ended))
	}
	if j := n.ended[0]; j.ID != ok.ID || j.Status != export.StatusSucceeded || j.Result == nil || j.Result.Rows != 2 || j.Result.SHA256 == "" {
		t.Errorf("succeeded job notified as %+v", j)
	}
	if j := n.ended[1]; j.ID != bad.ID || j.Status != export.StatusFailed || j.Error == nil || j.Error.Code != "invalid_request" {
		t.Errorf("failed job notified as %+v", j)
	}
}

// The pump queues a pending delivery that has no task (Redis was down when
// it was recorded) once it is overdue, and leaves queued ones alone.
func TestDeliveryPump(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	ep, err := f.store.CreateWebhook(ctx, &export.WebhookEndpoint{ID: "whk_pump", UserID: 2, URL: "https://example.com/hook",
		Events: export.EventTypes(), Enabled: true, Secret: export.NewWebhookSecret(), CreatedAt: now}, 10)
	if err != nil {
		t.Fatal(err)
	}
	lost := &export.WebhookDelivery{ID: "msg_lost", EndpointID: ep.ID, EventType: export.EventExportSucceeded, Payload: []byte(`{}`), CreatedAt: now.Add(-time.Minute)}
	queued := &export.WebhookDelivery{ID: "msg_queued", EndpointID: ep.ID, EventType: export.EventExportSucceeded, Payload: []byte(`{}`), CreatedAt: now.Add(-time.Minute)}
	if err := f.store.CreateDeliveries(ctx, []*export.WebhookDelivery{lost, queued}); err != nil {
		t.Fatal(err)
	}
	if err := f.queue.EnqueueDelivery(ctx, queued.ID, 0); err != nil {
		t.Fatal(err)
	}
	pump := &DeliveryPump{Store: f.store, Queue: f.queue, Inspector: f.queue.Inspector,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Interval: time.Second, Quiet: time.Second}
	n, err := pump.Once(ctx)
	if err != nil || n != 1 {
		t.Fatalf("pump queued %d (%v), want 1", n, err)
	}
	info, err := f.queue.Inspector.GetTaskInfo(QueueWebhooks, webhookTaskID(lost.ID, 0))
	if err != nil || info.Type != TypeWebhookDelivery {
		t.Fatalf("task of the lost delivery: %+v %v", info, err)
	}
	if n, err := pump.Once(ctx); err != nil || n != 0 {
		t.Fatalf("second pass queued %d (%v), want 0", n, err)
	}
}

func TestWebhookRetryDelayDispatch(t *testing.T) {
	t.Parallel()
	if d := webhookRetryDelay(0, &webhookRetry{after: 42 * time.Second}); d != 42*time.Second {
		t.Errorf("asked-for delay: %s", d)
	}
	if d := webhookRetryDelay(1, errors.New("store down")); d != 5*time.Minute {
		t.Errorf("schedule delay after the second attempt: %s", d)
	}
	task := NewWebhookDeliveryTask("msg_1", 0)
	if task.Type() != TypeWebhookDelivery {
		t.Fatal(task.Type())
	}
}

// A job the reconciler fails (Asynq gave up on its task) is announced too.
func TestReconcilerNotifiesFailedJobs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := &recordingNotifier{}
	j := f.newJob(t, `{}`)
	rec := &Reconciler{Store: f.store, Queue: f.queue, Inspector: f.queue.Inspector,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Interval: time.Second, Notify: n}
	if _, err := rec.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Inspector.ArchiveTask(QueueOf(export.TypeProbeLogs), j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if len(n.ended) != 1 || n.ended[0].ID != j.ID || n.ended[0].Status != export.StatusFailed || n.ended[0].Error.Code != "retries_exhausted" {
		t.Fatalf("notified %+v", n.ended)
	}
}
