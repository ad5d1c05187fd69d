package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

// feedModel marks the rows the feed test inserts, and the feed's filter.
const feedModel = "feed-test-model"

// feedIDs reads the request ids of a JSON Lines usage file: the "id" key
// when the file has one, else the id the test wrote into session_id.
func feedIDs(t *testing.T, file []byte) []int64 {
	t.Helper()
	var ids []int64
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct {
			ID        *json.Number `json:"id"`
			SessionID string       `json:"session_id"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		var (
			id  int64
			err error
		)
		if row.ID != nil {
			id, err = row.ID.Int64()
		} else {
			id, err = strconv.ParseInt(strings.TrimPrefix(row.SessionID, "feed-"), 10, 64)
		}
		if err != nil {
			t.Fatalf("line %q: no request id: %v", sc.Bytes(), err)
		}
		ids = append(ids, id)
	}
	return ids
}

// An incremental feed exported many times while rows keep arriving, some
// written up to 1.5 s after the time they carry (as CCH does): two runs at
// once, a worker killed mid-export, an upload that fails and a restore of
// the hub from a backup change nothing: across all runs the files hold
// every row exactly once.
func TestFeedEveryRowOnce(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(bucket.Endpoint, "http://"))
	s := newStack(t, withS3(bucket, proxy.URL("http")), withEnv("FEED_LAG", "2s"))
	s.start("api")
	w := s.start("worker")
	pool := s.pool()
	ctx := context.Background()

	// Rows arrive all along, each carrying a time up to 1.5 s before it is
	// written (within FEED_LAG).
	var (
		paused   atomic.Bool
		inserted atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			if paused.Load() {
				continue
			}
			_, err := pool.Exec(ctx, `WITH n AS (SELECT nextval(pg_get_serial_sequence('message_request', 'id')) AS id)
				INSERT INTO message_request (id, provider_id, user_id, key, model, endpoint, status_code, session_id, created_at)
				SELECT id, 0, $1, $2, $3, '/v1/messages', 200, 'feed-' || id, now() - random() * interval '1.5 seconds' FROM n`,
				seed.UserID, seed.UserKey, feedModel)
			if err == nil {
				inserted.Add(1)
			}
			// A failure (the hub being restored) only skips a row: the
			// comparison reads the table.
		}
	}()
	stopInserts := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopInserts)

	body := map[string]any{"type": "usage_logs", "format": "jsonl",
		"params": map[string]any{"window": "since_last", "feed": "warehouse", "model": feedModel}}
	seen := map[int64]int{}
	var runs, failed, rows int
	collect := func(j job) {
		t.Helper()
		runs++
		if j.Status != "succeeded" {
			failed++
			return
		}
		file, _, _ := s.download(adminToken, j.ID)
		ids := feedIDs(t, file)
		if int64(len(ids)) != j.Result.Rows {
			t.Fatalf("job %s: %d lines, result says %d rows", j.ID, len(ids), j.Result.Rows)
		}
		rows += len(ids)
		for _, id := range ids {
			seen[id]++
		}
	}
	run := func() job {
		t.Helper()
		j := s.wait(adminToken, s.create(adminToken, body).ID, 2*time.Minute)
		collect(j)
		return j
	}

	for range 4 {
		if j := run(); j.Status != "succeeded" {
			t.Fatalf("run: %s %+v", j.Status, j.Error)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Two runs at once: both read the same mark, the second to finish
	// finds it moved and runs again from the new one.
	a, b := s.create(adminToken, body), s.create(adminToken, body)
	for _, id := range []string{a.ID, b.ID} {
		if j := s.wait(adminToken, id, 2*time.Minute); j.Status != "succeeded" {
			t.Fatalf("concurrent run %s: %s %+v", id, j.Status, j.Error)
		} else {
			collect(j)
		}
	}

	// A worker killed mid-export: the next attempt starts from the same mark.
	release := s.holdTable("message_request")
	k := s.create(adminToken, body)
	s.waitStatus(k.ID, "running", w)
	w.Kill()
	release()
	s.expireTaskLeases("exports")
	s.start("worker")
	if j := s.wait(adminToken, k.ID, 2*time.Minute); j.Status != "succeeded" || j.Attempts < 2 {
		t.Fatalf("killed run: %s after %d attempts %+v", j.Status, j.Attempts, j.Error)
	} else {
		collect(j)
	}

	// The upload fails on every attempt: the job fails and the mark stays.
	markBefore := feedMark(t, s)
	proxy.Cut()
	if j := run(); j.Status != "failed" || j.Error == nil || j.Error.Code != "storage_unavailable" {
		t.Fatalf("run without storage: %s %+v", j.Status, j.Error)
	}
	proxy.Restore()
	if m := feedMark(t, s); m != markBefore {
		t.Fatalf("a failed run moved the mark from %s to %s", markBefore, m)
	}
	run()

	// The hub restored from a backup of itself: every row is written
	// again, none is exported again.
	paused.Store(true)
	bk := s.wait(adminToken, s.backup("full"), 2*time.Minute)
	if bk.Status != "succeeded" {
		t.Fatalf("backup: %s %+v", bk.Status, bk.Error)
	}
	if rs := s.wait(adminToken, s.restore(map[string]any{"backup_job_id": bk.ID, "clean_first": true}), 3*time.Minute); rs.Status != "succeeded" {
		t.Fatalf("restore: %s %+v", rs.Status, rs.Error)
	}
	paused.Store(false)
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		run()
	}

	// Rows stop; once they are FEED_LAG old, a last run takes the rest.
	stopInserts()
	time.Sleep(2500 * time.Millisecond)
	run()

	var want []int64
	r, err := pool.Query(ctx, `SELECT id FROM message_request WHERE model = $1 AND deleted_at IS NULL ORDER BY id`, feedModel)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id int64
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	r.Close()
	duplicates, missing, extra := 0, 0, 0
	for _, id := range want {
		switch n := seen[id]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
	}
	for id := range seen {
		if !slices.Contains(want, id) {
			extra++
		}
	}
	t.Logf("feed: %d runs (%d failed), %d rows in the table, %d rows in the files, %d inserted during the runs; duplicates=%d missing=%d extra=%d",
		runs, failed, len(want), rows, inserted.Load(), duplicates, missing, extra)
	if duplicates != 0 || missing != 0 || extra != 0 || len(want) < 100 {
		t.Fatalf("the files do not hold each of the %d rows once: duplicates=%d missing=%d extra=%d", len(want), duplicates, missing, extra)
	}
}

// feedMark reads the admin token's warehouse feed's mark.
func feedMark(t *testing.T, s *stack) string {
	t.Helper()
	var at *time.Time
	var id *int64
	err := s.pool().QueryRow(context.Background(), `SELECT mark_at, mark_id FROM hubexport.feeds WHERE owner_user_id = -1 AND name = 'warehouse'`).Scan(&at, &id)
	if err != nil {
		t.Fatal(err)
	}
	if at == nil || id == nil {
		return "none"
	}
	return fmt.Sprintf("%s/%d", at.UTC().Format(time.RFC3339Nano), *id)
}

// A user's since_last schedule: each slot exports the user's rows added
// since the run before, never another user's, and the schedule shows its
// mark; across the runs every row is in one file.
func TestFeedSchedule(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules(), withEnv("FEED_LAG", "1s"))
	s.start("serve")
	pool := s.pool()
	ctx := context.Background()
	insert := func(user int64, key string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `WITH n AS (SELECT nextval(pg_get_serial_sequence('message_request', 'id')) AS id)
			INSERT INTO message_request (id, provider_id, user_id, key, model, endpoint, status_code, session_id, created_at)
			SELECT id, 0, $1, $2, $3, '/v1/messages', 200, 'feed-' || id, now() - random() * interval '0.5 seconds' FROM n`,
			user, key, feedModel); err != nil {
			t.Fatal(err)
		}
	}
	r := s.do("POST", "/api/v1/schedules", seed.UserKey, map[string]any{"name": "warehouse", "cron": "@every 2s",
		"job":    map[string]any{"type": "usage_logs", "format": "jsonl", "params": map[string]any{"model": feedModel}},
		"window": "since_last", "retention": map[string]any{"keep_last": 1000}})
	if r.status != 201 {
		t.Fatalf("feed schedule: %d %s", r.status, r.body)
	}
	var sc anySchedule
	r.json(t, &sc)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		insert(seed.UserID, seed.UserKey)
		insert(seed.AdminUserID, seed.AdminKey)
		time.Sleep(40 * time.Millisecond)
	}
	// Once the last rows are FEED_LAG old, a slot takes them.
	stopped := time.Now()
	var jobs []scheduledJob
	until(t, 60*time.Second, "a slot run after the last rows were a FEED_LAG old", func() bool {
		jobs = s.scheduleJobs(sc.ID)
		for _, j := range jobs {
			if j.Status == "succeeded" && j.slot.After(stopped.Add(2*time.Second)) {
				return true
			}
		}
		return false
	})
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	until(t, 60*time.Second, "every slot ended", func() bool {
		jobs = s.scheduleJobs(sc.ID)
		for _, j := range jobs {
			if j.Status == "queued" || j.Status == "running" {
				return false
			}
		}
		return true
	})
	seen := map[int64]int{}
	runs := 0
	for _, j := range jobs {
		if j.Status != "succeeded" {
			continue
		}
		runs++
		file, _, _ := s.download(seed.UserKey, j.ID)
		for _, id := range feedIDs(t, file) {
			seen[id]++
		}
	}
	var want []int64
	rows, err := pool.Query(ctx, `SELECT id FROM message_request WHERE model = $1 AND user_id = $2 ORDER BY id`, feedModel, seed.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	rows.Close()
	duplicates, missing := 0, 0
	for _, id := range want {
		switch n := seen[id]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
		delete(seen, id)
	}
	t.Logf("feed schedule: %d slots, %d succeeded, %d rows of the user; duplicates=%d missing=%d others'=%d", len(jobs), runs, len(want), duplicates, missing, len(seen))
	if duplicates != 0 || missing != 0 || len(seen) != 0 || runs < 3 {
		t.Fatalf("duplicates=%d missing=%d, %d rows not the user's, %d runs", duplicates, missing, len(seen), runs)
	}
	var after struct {
		Feed *struct {
			ID int64 `json:"id"`
		} `json:"feed"`
	}
	s.do("GET", "/api/v1/schedules/"+sc.ID, seed.UserKey, nil).json(t, &after)
	var newest int64
	if err := pool.QueryRow(ctx, `SELECT id FROM message_request WHERE model = $1 AND user_id = $2
		ORDER BY created_at DESC, id DESC LIMIT 1`, feedModel, seed.UserID).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if after.Feed == nil || after.Feed.ID != newest {
		t.Fatalf("schedule's mark %+v, want the newest row (by time, then id) %d", after.Feed, newest)
	}
}
