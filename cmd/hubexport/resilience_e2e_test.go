package main

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/scratch"
	"github.com/hubexport/hubexport/internal/testenv"
	"github.com/hubexport/hubexport/jobs"
)

// A worker killed in the middle of a job: the job is taken up again and
// succeeds once, with one artifact and no leftovers.
func TestWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	probeFixture(s)
	s.start("api")

	// Hold the probe table so the worker's query blocks mid-job.
	release := s.holdTable("provider_endpoint_probe_logs")
	j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"endpoint_id": 1}})
	w1 := s.start("worker")
	s.waitStatus(j.ID, "running", w1)
	w1.Kill()
	release()

	s.start("worker")
	// Asynq hands a dead worker's task out again once its 30 s lease has
	// lapsed and its recoverer (every minute) has seen it.
	got := s.wait(adminToken, j.ID, 3*time.Minute)
	if got.Status != "succeeded" || got.Attempts < 2 {
		t.Fatalf("job after the crash: %s, %d attempts, %+v", got.Status, got.Attempts, got.Error)
	}
	body, _, _ := s.download(adminToken, j.ID)
	if !strings.HasPrefix(string(body), "[10:30:00] OK 200 45ms ") {
		t.Fatalf("file %q", body)
	}
	if files := filesUnder(t, dir); len(files) != 1 {
		t.Fatalf("storage holds %v, want exactly the one artifact", files)
	}
	var n int
	if err := s.pool().QueryRow(context.Background(), `SELECT count(*) FROM hubexport.jobs WHERE status = 'succeeded'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d succeeded jobs (%v)", n, err)
	}
}

// A worker SIGKILLed during six attempts in a row of one usage export: each
// crash only delays the job, which then succeeds once, with one artifact.
func TestWorkerKilledRepeatedly(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("api")
	// Hold the usage table so each attempt blocks mid-job.
	release := s.holdTable("message_request")
	j := s.create(adminToken, map[string]any{"type": "usage_logs"})
	const kills = 6
	for i := 1; i <= kills; i++ {
		w := s.start("worker")
		s.waitAttempt(j.ID, i, w)
		w.Kill()
		s.expireTaskLeases("exports") // usage exports' queue
	}
	release()
	s.start("worker")
	got := s.wait(adminToken, j.ID, time.Minute)
	if got.Status != "succeeded" || got.Attempts != kills+1 || got.Result.Rows == 0 {
		t.Fatalf("job after %d kills: %s, %d attempts, %+v %+v", kills, got.Status, got.Attempts, got.Result, got.Error)
	}
	if files := filesUnder(t, dir); len(files) != 1 {
		t.Fatalf("storage holds %v, want exactly the one artifact", files)
	}
}

// waitAttempt polls job id until its attempt n is running; p's logs help
// when it never is.
func (s *stack) waitAttempt(id string, n int, p *proc) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := s.get(adminToken, id)
		if j.Status == "running" && j.Attempts >= n {
			return
		}
		if (j.Status != "running" && j.Status != "queued") || time.Now().After(deadline) {
			s.t.Fatalf("job %s never ran attempt %d: %s after %d attempts, %+v\n%s", id, n, j.Status, j.Attempts, j.Error, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expireTaskLeases moves the Asynq leases of queue's active tasks an hour
// into the past, as if a killed worker's leases had lapsed long ago, so the
// next worker's recoverer hands the tasks out again at its start instead
// of a minute or two later.
func (s *stack) expireTaskLeases(queue string) {
	s.t.Helper()
	opts, err := redis.ParseURL(s.redis.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	key := "asynq:{" + queue + "}:lease"
	ids, err := rdb.ZRange(ctx, key, 0, -1).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, id := range ids {
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(time.Now().Add(-time.Hour).Unix()), Member: id}).Err(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// A job canceled after its worker was killed mid-write: its unfinished file
// is removed by the cleanup of whatever role runs, here an API alone (no
// scheduler, no worker), and the job no longer reads as needing cleanup.
func TestLeftoversCleanedWithoutScheduler(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("CLEANUP_INTERVAL", "1s"))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	probeFixture(s)
	s.start("api")
	release := s.holdTable("provider_endpoint_probe_logs")
	j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"endpoint_id": 1}})
	w := s.start("worker")
	s.waitStatus(j.ID, "running", w)
	// "running" is recorded before the attempt opens its file: kill once it has.
	until(t, 15*time.Second, "the attempt's unfinished file", func() bool {
		files := filesUnder(t, dir)
		return len(files) == 1 && strings.Contains(files[0], ".tmp")
	})
	w.Kill()
	release()
	if r := s.do("DELETE", "/api/v1/exports/"+j.ID, adminToken, nil); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(filesUnder(t, dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("leftovers still there with only the API running: %v", filesUnder(t, dir))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var pending bool
	until(t, 5*time.Second, "needs_cleanup cleared", func() bool {
		err := s.pool().QueryRow(context.Background(), `SELECT needs_cleanup FROM hubexport.jobs WHERE id = $1`, j.ID).Scan(&pending)
		return err == nil && !pending
	})
}

// A worker starting removes from TMPDIR the restore directories of workers
// that were killed, and leaves a live process's alone.
func TestWorkerSweepsDeadTempDirs(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	s := newStack(t, withEnv("TMPDIR", tmp))
	live, err := scratch.MkdirTemp(tmp, jobs.RestoreTempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	// What a killed worker leaves: a directory whose owner file nobody locks.
	var dead []string
	for _, name := range []string{"hubexport-restore-4242-123", "hubexport-restore-4243-456"} {
		d := filepath.Join(tmp, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{".owner", "part.xml"} {
			if err := os.WriteFile(filepath.Join(d, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dead = append(dead, d)
	}
	w := s.start("worker")
	deadline := time.Now().Add(20 * time.Second)
	for _, d := range dead {
		for {
			if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there after the worker started:\n%s", d, w.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := os.Stat(live.Path); err != nil {
		t.Fatalf("the live directory was removed: %v", err)
	}
	if !strings.Contains(w.Logs(), `"msg":"temp_swept"`) {
		t.Errorf("no temp_swept in the logs")
	}
}

// PostgreSQL terminates every hubexport backend between polls: each poll
// still answers 200, its read retried on a fresh connection.
func TestPollsSurviveTerminatedBackends(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	ctx := context.Background()
	admin := s.pool()
	failures := 0
	for round := range 20 {
		// Several polls at once, so the pool holds several connections.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if r := s.do("GET", "/api/v1/exports/"+j.ID, adminToken, nil); r.status != 200 {
					t.Errorf("round %d, warm-up poll: %d %s", round, r.status, r.body)
				}
			})
		}
		wg.Wait()
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'hubexport'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("round %d: no hubexport backend to terminate", round)
		}
		for range 3 {
			if r := s.do("GET", "/api/v1/exports/"+j.ID, adminToken, nil); r.status != 200 {
				failures++
				t.Errorf("round %d, poll after %d backends were terminated: %d %s", round, n, r.status, r.body)
			}
		}
	}
	if failures > 0 {
		t.Fatalf("%d of 60 polls failed after backends were terminated", failures)
	}
}

// Redis loses its data while jobs are queued: the reconciler enqueues them
// again and they complete.
func TestRedisFlushedWhileQueued(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	a := s.create(adminToken, map[string]any{"type": "probe_logs"})
	b := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"result": "fail"}})
	opt, err := asynq.ParseRedisURI(s.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	for _, id := range []string{a.ID, b.ID} {
		if info, err := in.GetTaskInfo(jobs.QueueExports, id); err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("job %s before the flush: task %+v, %v (want pending in Asynq)", id, info, err)
		}
	}
	s.redis.Flush(t)
	for _, id := range []string{a.ID, b.ID} {
		if _, err := in.GetTaskInfo(jobs.QueueExports, id); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatalf("job %s after the flush: task still in Redis (%v)", id, err)
		}
	}
	s.start("worker")
	for _, id := range []string{a.ID, b.ID} {
		if j := s.wait(adminToken, id, 30*time.Second); j.Status != "succeeded" {
			t.Fatalf("job %s after the flush: %s %+v", id, j.Status, j.Error)
		}
	}
}

func s3Client(s *testenv.S3) *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
	})
}

func bucketLeftovers(t *testing.T, s *testenv.S3) (objects, uploads int) {
	t.Helper()
	ctx := context.Background()
	c := s3Client(s)
	objs, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	return len(objs.Contents), len(ups.Uploads)
}

func TestProbeLogExportS3(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	s := newStack(t, withS3(bucket, bucket.Endpoint), withEnv("DOWNLOAD_LINK_TTL", "2s"))
	probeFixture(s)
	s.start("serve")
	j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"endpoint_id": 1, "result": "ok"}})
	if j = s.wait(adminToken, j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	body, hdr, link := s.download(adminToken, j.ID)
	if want := "[10:30:00] OK 200 45ms \n[10:27:00] OK 204 1.00s "; string(body) != want {
		t.Fatalf("file %q, want %q", body, want)
	}
	if !strings.HasPrefix(link, bucket.Endpoint+"/") || !strings.Contains(link, "X-Amz-Signature=") {
		t.Fatalf("link %q is not presigned for the public endpoint", link)
	}
	if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, j.Result.Filename) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	checkLinkRefused(t, tamper(link, "X-Amz-Signature"), "tampered S3 link")
	time.Sleep(3 * time.Second)
	checkLinkRefused(t, link, "expired S3 link")
	if objs, ups := bucketLeftovers(t, bucket); objs != 1 || ups != 0 {
		t.Fatalf("bucket holds %d objects and %d uploads, want 1 and 0", objs, ups)
	}
}

func TestLocalLinksRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("DOWNLOAD_LINK_TTL", "2s"))
	s.start("serve")
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	if j = s.wait(adminToken, j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	_, _, link := s.download(adminToken, j.ID)
	checkLinkRefused(t, tamper(link, "signature"), "tampered local link")
	checkLinkRefused(t, strings.Replace(link, "expires=", "expires=9", 1), "local link with a later expiry")
	time.Sleep(3 * time.Second)
	checkLinkRefused(t, link, "expired local link")
}

// tamper flips one character of a query parameter.
func tamper(link, param string) string {
	u, _ := url.Parse(link)
	q := u.Query()
	v := []byte(q.Get(param))
	if v[0] == 'a' {
		v[0] = 'b'
	} else {
		v[0] = 'a'
	}
	q.Set(param, string(v))
	u.RawQuery = q.Encode()
	return u.String()
}

func checkLinkRefused(t *testing.T, link, what string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("%s: status %d, want 403", what, resp.StatusCode)
	}
}

// The S3 server unreachable during the upload: the job retries, then fails
// with a clear code, and nothing is left in the bucket.
func TestS3Unreachable(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(bucket.Endpoint, "http://"))
	s := newStack(t, withS3(bucket, proxy.URL("http")))
	s.start("serve")
	proxy.Cut()
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	j = s.wait(adminToken, j.ID, 2*time.Minute)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "storage_unavailable" || j.Attempts < 2 {
		t.Fatalf("job: %s after %d attempts, error %+v", j.Status, j.Attempts, j.Error)
	}
	if strings.Contains(j.Error.Message, bucket.SecretKey) {
		t.Fatal("error message carries the secret key")
	}
	proxy.Restore()
	// Maintenance removes anything an aborted upload could not clean.
	deadline := time.Now().Add(30 * time.Second)
	for {
		objs, ups := bucketLeftovers(t, bucket)
		if objs == 0 && ups == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket still holds %d objects and %d uploads", objs, ups)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// With storage back, the same export succeeds.
	j = s.create(adminToken, map[string]any{"type": "probe_logs"})
	if j = s.wait(adminToken, j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("after restore: %s %+v", j.Status, j.Error)
	}
}

// Artifacts expire: the job reads expired, the file is gone, download is 410.
// Deleting an ended job's artifact does the same at once.
func TestArtifactExpiryAndDelete(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("ARTIFACT_RETENTION", "3s"), withEnv("CLEANUP_INTERVAL", "1s"))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	a := s.create(adminToken, map[string]any{"type": "probe_logs"})
	b := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"result": "ok"}})
	for _, id := range []string{a.ID, b.ID} {
		if j := s.wait(adminToken, id, 30*time.Second); j.Status != "succeeded" {
			t.Fatalf("job %s: %s", id, j.Status)
		}
	}
	r := s.do("DELETE", "/api/v1/exports/"+b.ID, adminToken, nil)
	var bj job
	r.json(t, &bj)
	if r.status != 200 || bj.Status != "expired" {
		t.Fatalf("delete artifact: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/api/v1/exports/"+b.ID+"/download", adminToken, nil); r.status != 410 {
		t.Fatalf("download after delete: %d", r.status)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(filesUnder(t, dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("files left after expiry: %v", filesUnder(t, dir))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if j := s.get(adminToken, a.ID); j.Status != "expired" {
		t.Fatalf("expired job reads %s", j.Status)
	}
	if r := s.do("GET", "/api/v1/exports/"+a.ID+"/download", adminToken, nil); r.status != 410 {
		t.Fatalf("download after expiry: %d", r.status)
	}
}

// SIGTERM stops a server cleanly.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	p := s.start("serve")
	p.Stop(t)
	if !strings.Contains(p.Logs(), `"msg":"worker_stopped"`) || !strings.Contains(p.Logs(), `"msg":"api_stopped"`) {
		t.Fatalf("no orderly shutdown in the logs:\n%s", p.Logs())
	}
	if strings.Contains(p.Logs(), adminToken) {
		t.Fatal("the admin token appears in the logs")
	}
}

// A worker stopped with SIGTERM mid-job hands the job back: it reads queued
// again and the next worker finishes it, without waiting for a lease.
func TestShutdownHandsJobsBack(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("SHUTDOWN_TIMEOUT", "1s"))
	probeFixture(s)
	s.start("api")
	release := s.holdTable("provider_endpoint_probe_logs")
	j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"endpoint_id": 1}})
	w := s.start("worker")
	s.waitStatus(j.ID, "running", w)
	w.Stop(t)
	got := s.get(adminToken, j.ID)
	if got.Status != "queued" || got.Error == nil || got.Error.Code != "interrupted" {
		t.Fatalf("job after SIGTERM: %s %+v", got.Status, got.Error)
	}
	release()
	// Well under the minute a lapsed Asynq lease would take to recover.
	s.start("worker")
	if got = s.wait(adminToken, j.ID, 30*time.Second); got.Status != "succeeded" || got.Attempts != 2 {
		t.Fatalf("job: %s after %d attempts", got.Status, got.Attempts)
	}
}

// waitStatus polls job id until it reads status; p's logs help when it
// never does.
func (s *stack) waitStatus(id, status string, p *proc) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.get(adminToken, id).Status != status {
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s never became %s:\n%s", id, status, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
