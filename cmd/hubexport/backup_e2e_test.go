package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

// backupJob is the job object as the backup and restore tests read it.
type backupJob struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Status   string         `json:"status"`
	Attempts int            `json:"attempts"`
	Params   map[string]any `json:"params"`
	Progress struct {
		Done  int64  `json:"done"`
		Total int64  `json:"total"`
		Unit  string `json:"unit"`
		Note  string `json:"note"`
	} `json:"progress"`
	Result *struct {
		Filename    string         `json:"filename"`
		ContentType string         `json:"content_type"`
		SizeBytes   int64          `json:"size_bytes"`
		SHA256      string         `json:"sha256"`
		Details     map[string]any `json:"details"`
	} `json:"result"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *stack) job(id string) backupJob {
	s.t.Helper()
	r := s.do("GET", "/api/v1/exports/"+id, adminToken, nil)
	if r.status != 200 {
		s.t.Fatalf("get %s: %d %s", id, r.status, r.body)
	}
	var j backupJob
	r.json(s.t, &j)
	return j
}

// finish waits for job id to end.
func (s *stack) finish(id string, timeout time.Duration) backupJob {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.job(id)
		switch j.Status {
		case "succeeded", "failed", "canceled", "expired":
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s still %s after %s (progress %+v)", id, j.Status, timeout, j.Progress)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// until polls cond every 50 ms for up to timeout.
func until(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) backup(mode string) string {
	s.t.Helper()
	body := map[string]any{"type": "database_backup"}
	if mode != "" {
		body["params"] = map[string]any{"mode": mode}
	}
	return s.create(adminToken, body).ID
}

func (s *stack) restore(params map[string]any) string {
	s.t.Helper()
	return s.create(adminToken, map[string]any{"type": "database_restore", "params": params}).ID
}

func (s *stack) hubRedis() *redis.Client {
	s.t.Helper()
	opts, err := redis.ParseURL(s.redis.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(opts)
	s.t.Cleanup(func() { c.Close() })
	return c
}

// holdTable takes an ACCESS EXCLUSIVE lock on table until the returned
// function is called: a pg_dump started meanwhile waits on it.
func (s *stack) holdTable(table string) (release func()) {
	s.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		s.t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		}
	}
	s.t.Cleanup(release)
	return release
}

// pgDumps counts the pg_dump sessions on the hub database.
func (s *stack) pgDumps() int {
	s.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname = current_database()`).Scan(&n)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// emptyDatabase creates a database on the test server for a restore to fill,
// dropped after the test.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin := testenv.PostgresServer(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "restore_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// withPassword adds a password to a DSN; the test server trusts local
// connections, so it only shows whether the password leaks.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

type tableStat struct {
	Rows int64
	Sum  string
}

// fingerprint is every table of the hub's schemas (not hubexport's) with
// its row count and an MD5 over its rows in a stable order.
func fingerprint(t *testing.T, dsn string) map[string]tableStat {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hubexport')
		  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var tables [][2]string
	for rows.Next() {
		var sch, name string
		if err := rows.Scan(&sch, &name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, [2]string{sch, name})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]tableStat{}
	for _, tb := range tables {
		id := pgx.Identifier{tb[0], tb[1]}.Sanitize()
		var st tableStat
		err := conn.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '') FROM `+id+` t`).Scan(&st.Rows, &st.Sum)
		if err != nil {
			t.Fatal(err)
		}
		out[tb[0]+"."+tb[1]] = st
	}
	return out
}

func sameTables(t *testing.T, got, want map[string]tableStat) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("table %s missing after the restore", name)
		} else if g != w {
			t.Errorf("table %s: %d rows (md5 %s) after the restore, %d rows (md5 %s) before", name, g.Rows, g.Sum, w.Rows, w.Sum)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("table %s appeared in the restore", name)
		}
	}
}

var backupName = regexp.MustCompile(`^backup_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(_no-logs|_ledger-only)?\.dump$`)

// checkBackup checks a succeeded backup's result and file.
func (s *stack) checkBackup(j backupJob, suffix string) []byte {
	s.t.Helper()
	if j.Status != "succeeded" {
		s.t.Fatalf("backup %s: %s %+v", j.ID, j.Status, j.Error)
	}
	r := j.Result
	if !backupName.MatchString(r.Filename) || !strings.HasSuffix(r.Filename, suffix+".dump") || r.ContentType != "application/octet-stream" {
		s.t.Fatalf("backup result %+v", r)
	}
	if n, _ := r.Details["toc_entries"].(float64); n < 10 {
		s.t.Fatalf("backup details %v: want toc_entries", r.Details)
	}
	body, hdr, _ := s.download(adminToken, j.ID)
	sum := sha256.Sum256(body)
	if !strings.HasPrefix(string(body), "PGDMP") || int64(len(body)) != r.SizeBytes || hex.EncodeToString(sum[:]) != r.SHA256 {
		s.t.Fatalf("backup file: %d bytes, sha256 %x; result says %d bytes, %s", len(body), sum, r.SizeBytes, r.SHA256)
	}
	if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, r.Filename) {
		s.t.Fatalf("Content-Disposition %q", cd)
	}
	return body
}

// A backup through the API restores into a fresh database with the same
// tables, row counts and rows; the target's password is never shown.
func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("BACKUP_TIMEZONE", "Asia/Shanghai"))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	want := fingerprint(t, s.dsn)
	if len(want) < 8 || want["public.message_request"].Rows == 0 {
		t.Fatalf("seeded hub has %v", want)
	}

	b := s.finish(s.backup(""), time.Minute)
	s.checkBackup(b, "")
	if files := filesUnder(t, dir); len(files) != 2 || files[0] != filepath.Join("backups", b.ID, b.Result.Filename) ||
		files[1] != filepath.Join("backups", b.ID, b.Result.Filename+".manifest.json") {
		t.Fatalf("storage holds %v", files)
	}
	// The name shows the creation time in BACKUP_TIMEZONE (UTC+8).
	var created time.Time
	if err := s.pool().QueryRow(context.Background(), `SELECT created_at FROM hubexport.jobs WHERE id = $1`, b.ID).Scan(&created); err != nil {
		t.Fatal(err)
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	if want := "backup_" + created.In(sh).Format("2006-01-02T15-04-05") + ".dump"; b.Result.Filename != want {
		t.Errorf("filename %s, want %s", b.Result.Filename, want)
	}

	target := emptyDatabase(t)
	r := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": withPassword(t, target, "hunter2")}), time.Minute)
	if r.Status != "succeeded" || r.Result == nil {
		t.Fatalf("restore: %s %+v", r.Status, r.Error)
	}
	d := r.Result.Details
	if d["errors"] != float64(0) || d["toc_entries"] != b.Result.Details["toc_entries"] || d["first_fatal"] != "" ||
		!strings.Contains(fmt.Sprint(d["message"]), "restart CCH so its migrations bring an older dump up to date") {
		t.Errorf("restore details %v", d)
	}
	if r.Result.Filename != "" || r.Result.SHA256 != "" {
		t.Errorf("a restore has no file: %+v", r.Result)
	}
	raw := s.do("GET", "/api/v1/exports/"+r.ID, adminToken, nil)
	list := s.do("GET", "/api/v1/exports?type=database_restore", adminToken, nil)
	for _, body := range [][]byte{raw.body, list.body} {
		if strings.Contains(string(body), "hunter2") || !strings.Contains(string(body), ":xxxxx@") {
			t.Errorf("job JSON shows the target's password or no redacted URL: %s", body)
		}
	}
	if dl := s.do("GET", "/api/v1/exports/"+r.ID+"/download", adminToken, nil); dl.status != 409 {
		t.Errorf("download of a restore: %d %s", dl.status, dl.body)
	} else if code, _ := dl.errorCode(t); code != "no_artifact" {
		t.Errorf("download of a restore: %s", dl.body)
	}
	sameTables(t, fingerprint(t, target), want)

	// Both ends of the restore are in the audit trail, password-free.
	var entries []string
	rows, err := s.pool().Query(context.Background(), `SELECT action || ' ' || outcome || ' ' || coalesce(params::text, '') FROM hubexport.audit_log
		WHERE target = $1 AND action IN ('export.create', 'restore.finished') ORDER BY id`, "job:"+r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e string
		_ = rows.Scan(&e)
		entries = append(entries, e)
	}
	if len(entries) != 2 || !strings.HasPrefix(entries[0], "export.create ok") || !strings.HasPrefix(entries[1], "restore.finished ok") ||
		strings.Contains(strings.Join(entries, "\n"), "hunter2") || !strings.Contains(entries[0], b.ID) {
		t.Errorf("audit entries of the restore: %q", entries)
	}
}

// exclude_logs keeps message_request without rows; ledger_only drops it.
func TestBackupModes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	want := fingerprint(t, s.dsn)
	for _, tc := range []struct{ mode, suffix string }{{"exclude_logs", "_no-logs"}, {"ledger_only", "_ledger-only"}} {
		b := s.finish(s.backup(tc.mode), time.Minute)
		s.checkBackup(b, tc.suffix)
		if b.Result.Details["mode"] != tc.mode {
			t.Errorf("%s: details %v", tc.mode, b.Result.Details)
		}
		target := emptyDatabase(t)
		r := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
		if r.Status != "succeeded" {
			t.Fatalf("%s restore: %s %+v", tc.mode, r.Status, r.Error)
		}
		got := fingerprint(t, target)
		logs, present := got["public.message_request"]
		switch tc.mode {
		case "exclude_logs":
			if !present || logs.Rows != 0 {
				t.Errorf("exclude_logs: message_request %v (present %v), want present and empty", logs, present)
			}
		case "ledger_only":
			if present {
				t.Errorf("ledger_only: message_request is present (%d rows)", logs.Rows)
			}
		}
		delete(got, "public.message_request")
		others := map[string]tableStat{}
		for k, v := range want {
			if k != "public.message_request" {
				others[k] = v
			}
		}
		sameTables(t, got, others)
	}
}

type logLine struct {
	Time  time.Time `json:"time"`
	Msg   string    `json:"msg"`
	JobID string    `json:"job_id"`
}

// events returns the log lines named msg, in order, from procs' logs.
func events(t *testing.T, msg string, procs ...*proc) []logLine {
	t.Helper()
	var out []logLine
	for _, p := range procs {
		sc := bufio.NewScanner(strings.NewReader(p.Logs()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg {
				out = append(out, l)
			}
		}
	}
	return out
}

// Two workers asked for two backups at once never run two pg_dumps at
// once: one waits, visibly, for the backup lock; both succeed, one after
// the other.
func TestBackupsNeverOverlap(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	w1, w2 := s.start("worker"), s.start("worker")
	// Slow the first pg_dump down so the two certainly meet.
	release := s.holdTable("users")
	a, b := s.backup(""), s.backup("exclude_logs")
	until(t, 30*time.Second, "one backup dumping, the other waiting for the lock", func() bool {
		ja, jb := s.job(a), s.job(b)
		waiting := strings.HasPrefix(ja.Progress.Note, "waiting for the backup lock") || strings.HasPrefix(jb.Progress.Note, "waiting for the backup lock")
		return ja.Status == "running" && jb.Status == "running" && waiting && s.pgDumps() == 1
	})
	time.Sleep(500 * time.Millisecond)
	if n := s.pgDumps(); n != 1 {
		t.Fatalf("%d pg_dumps at once", n)
	}
	release()
	for _, id := range []string{a, b} {
		if j := s.finish(id, time.Minute); j.Status != "succeeded" {
			t.Fatalf("backup %s: %s %+v", id, j.Status, j.Error)
		}
	}
	starts, ends := events(t, "pg_dump_start", w1, w2), events(t, "pg_dump_complete", w1, w2)
	if len(starts) != 2 || len(ends) != 2 {
		t.Fatalf("%d pg_dump starts and %d completions logged, want 2 each", len(starts), len(ends))
	}
	span := map[string][2]time.Time{}
	for _, e := range starts {
		span[e.JobID] = [2]time.Time{e.Time, span[e.JobID][1]}
	}
	for _, e := range ends {
		span[e.JobID] = [2]time.Time{span[e.JobID][0], e.Time}
	}
	first, second := span[a], span[b]
	if first[0].After(second[0]) {
		first, second = second, first
	}
	if !first[1].Before(second[0]) {
		t.Errorf("pg_dumps overlapped: %v and %v", first, second)
	}
	if len(events(t, "backup_lock_conflict", w1, w2)) == 0 {
		t.Error("no backup_lock_conflict logged by the waiting backup")
	}
}

// A lock held by CCH (its own value, its 5-minute TTL) makes a backup wait
// with a visible note; it runs once CCH lets go.
func TestBackupWaitsForCCHLock(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	p := s.start("serve")
	rdb := s.hubRedis()
	ctx := context.Background()
	if err := rdb.Set(ctx, "database:backup:lock", "1769688000000-k3x9a2", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	id := s.backup("")
	var note string
	until(t, 20*time.Second, "the backup waiting for the lock", func() bool {
		j := s.job(id)
		note = j.Progress.Note
		return j.Status == "running" && strings.HasPrefix(note, "waiting for the backup lock")
	})
	if !strings.Contains(note, "started from CCH") {
		t.Errorf("note %q does not name CCH as the holder", note)
	}
	time.Sleep(2 * time.Second)
	if j := s.job(id); j.Status != "running" || s.pgDumps() != 0 || len(events(t, "pg_dump_start", p)) != 0 {
		t.Fatalf("the backup did not wait: %s, %d pg_dumps", j.Status, s.pgDumps())
	}
	if err := rdb.Del(ctx, "database:backup:lock").Err(); err != nil {
		t.Fatal(err)
	}
	j := s.finish(id, time.Minute)
	s.checkBackup(j, "")
	if len(events(t, "database_export_initiated", p)) != 1 || len(events(t, "database_export_lock_conflict", p)) != 0 {
		t.Errorf("events: initiated %d, lock_conflict %d", len(events(t, "database_export_initiated", p)), len(events(t, "database_export_lock_conflict", p)))
	}
	if v, err := rdb.Get(ctx, "database:backup:lock").Result(); err != redis.Nil {
		t.Errorf("lock left behind: %q %v", v, err)
	}
}

// Backups waiting for a lock someone else holds never take the slots
// exports need: with two export slots and two backups waiting, an export
// still completes at once; the backups run once the lock is free.
func TestExportRunsWhileBackupsWaitForLock(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("WORKER_CONCURRENCY", "2"))
	s.start("serve")
	rdb := s.hubRedis()
	ctx := context.Background()
	if err := rdb.Set(ctx, "database:backup:lock", "1769688000000-k3x9a2", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	a, b := s.backup(""), s.backup("")
	until(t, 20*time.Second, "a backup waiting for the lock", func() bool {
		j := s.job(a)
		if j.Status != "running" {
			j = s.job(b)
		}
		return j.Status == "running" && strings.HasPrefix(j.Progress.Note, "waiting for the backup lock")
	})
	time.Sleep(time.Second) // let the other backup take a slot, if it can
	start := time.Now()
	p := s.create(adminToken, map[string]any{"type": "probe_logs"})
	if j := s.wait(adminToken, p.ID, 20*time.Second); j.Status != "succeeded" {
		t.Fatalf("export while backups wait: %s %+v", j.Status, j.Error)
	}
	t.Logf("export done in %s while backups waited", time.Since(start).Round(time.Millisecond))
	if err := rdb.Del(ctx, "database:backup:lock").Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if j := s.finish(id, 2*time.Minute); j.Status != "succeeded" {
			t.Fatalf("backup %s: %s %+v", id, j.Status, j.Error)
		}
	}
}

// A worker SIGKILLed mid-dump leaves its backup lock in Redis for 5 minutes;
// the job's next attempt takes it over at once and the backup succeeds.
func TestBackupCrashTakesOverItsOwnLock(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	rdb := s.hubRedis()
	ctx := context.Background()
	release := s.holdTable("users") // the dump waits mid-way, holding the lock
	id := s.backup("")
	w := s.start("worker")
	until(t, 20*time.Second, "the backup dumping under the lock", func() bool {
		v, _ := rdb.Get(ctx, "database:backup:lock").Result()
		return strings.HasPrefix(v, "hubexport:"+id+":") && s.pgDumps() == 1
	})
	stale, _ := rdb.Get(ctx, "database:backup:lock").Result()
	w.Kill()
	release()
	s.expireTaskLeases("backups")
	w = s.start("worker")
	j := s.finish(id, 60*time.Second)
	if j.Status != "succeeded" {
		t.Fatalf("backup after the crash: %s %+v\n%s", j.Status, j.Error, w.Logs())
	}
	if !strings.Contains(w.Logs(), `"msg":"backup_lock_taken_over"`) || !strings.Contains(w.Logs(), stale) {
		t.Errorf("no backup_lock_taken_over of %s in the logs", stale)
	}
	if v, err := rdb.Get(ctx, "database:backup:lock").Result(); err != redis.Nil {
		t.Errorf("lock left behind: %q %v", v, err)
	}
}

// A backup whose lock is taken away mid-dump stops its pg_dump and fails,
// leaving nothing in storage and the new holder's key alone.
func TestBackupLockLostMidDump(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("BACKUP_LOCK_RENEW_INTERVAL", "1s"))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	p := s.start("serve")
	rdb := s.hubRedis()
	ctx := context.Background()
	s.holdTable("users")
	id := s.backup("")
	until(t, 30*time.Second, "pg_dump running", func() bool { return s.pgDumps() == 1 })
	if v, _ := rdb.Get(ctx, "database:backup:lock").Result(); !strings.HasPrefix(v, "hubexport:"+id+":") {
		t.Fatalf("lock value %q while the backup runs", v)
	}
	if err := rdb.Set(ctx, "database:backup:lock", "1769688000000-thief", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	j := s.finish(id, 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "backup_lock_lost" || j.Attempts != 1 {
		t.Fatalf("backup after losing its lock: %s after %d attempts, %+v", j.Status, j.Attempts, j.Error)
	}
	until(t, 10*time.Second, "pg_dump gone", func() bool { return s.pgDumps() == 0 })
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("storage holds %v", files)
	}
	if v, _ := rdb.Get(ctx, "database:backup:lock").Result(); v != "1769688000000-thief" {
		t.Errorf("the new holder's lock was touched: %q", v)
	}
	if len(events(t, "backup_lock_lost", p)) != 1 || len(events(t, "pg_dump_cancelled", p)) != 1 {
		t.Errorf("events: lock_lost %d, pg_dump_cancelled %d", len(events(t, "backup_lock_lost", p)), len(events(t, "pg_dump_cancelled", p)))
	}
}

// DELETE on a running backup kills pg_dump, aborts the upload and frees the
// lock.
func TestBackupCancel(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	rdb := s.hubRedis()
	ctx := context.Background()
	release := s.holdTable("message_request")
	id := s.backup("")
	until(t, 30*time.Second, "pg_dump running", func() bool { return s.pgDumps() == 1 })
	if r := s.do("DELETE", "/api/v1/exports/"+id, adminToken, nil); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	// Still holding the table: only a killed pg_dump goes away.
	until(t, 10*time.Second, "pg_dump killed", func() bool { return s.pgDumps() == 0 })
	until(t, 10*time.Second, "lock released", func() bool {
		return rdb.Exists(ctx, "database:backup:lock").Val() == 0
	})
	release()
	if j := s.finish(id, 10*time.Second); j.Status != "canceled" {
		t.Fatalf("backup after cancel: %s %+v", j.Status, j.Error)
	}
	time.Sleep(time.Second)
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("storage holds %v after the cancel", files)
	}
	// The lock is free for the next one.
	s.checkBackup(s.finish(s.backup(""), time.Minute), "")
}

// A pg_dump older than the server is refused at once, naming both versions
// and what to install.
func TestBackupRefusesOldPgDump(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.3'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, withEnv("PG_DUMP_PATH", script))
	s.start("serve")
	j := s.finish(s.backup(""), 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "pg_dump_too_old" || j.Attempts != 1 {
		t.Fatalf("backup with pg_dump 12.3: %s after %d attempts, %+v", j.Status, j.Attempts, j.Error)
	}
	var major int
	if err := s.pool().QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12.3", fmt.Sprintf("PostgreSQL %d", major), fmt.Sprintf("postgresql-client-%d", major), "PG_DUMP_PATH"} {
		if !strings.Contains(j.Error.Message, want) {
			t.Errorf("message %q does not say %q", j.Error.Message, want)
		}
	}
}

// A dump that pg_restore --list cannot read back is deleted, never
// published, and the job fails backup_unverifiable.
func TestBackupUnverifiable(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "pg_restore")
	body := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_restore (PostgreSQL) 99.0'; exit 0; fi\n" +
		"cat >/dev/null\necho 'pg_restore: error: could not read from input file: end of file' >&2\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, withEnv("PG_RESTORE_PATH", script))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	j := s.finish(s.backup(""), 2*time.Minute)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "backup_unverifiable" || j.Attempts != 3 {
		t.Fatalf("unverifiable backup: %s after %d attempts, %+v", j.Status, j.Attempts, j.Error)
	}
	if !strings.Contains(j.Error.Message, "end of file") {
		t.Errorf("message %q", j.Error.Message)
	}
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("storage holds %v", files)
	}
}

func tableCount(t *testing.T, dsn string) int {
	t.Helper()
	return len(fingerprint(t, dsn))
}

// Restores from uploads: a file that is not a dump fails before anything is
// touched; a dry run lists and touches nothing; a real restore applies the
// dump and removes the upload.
func TestRestoreFromUpload(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	target := emptyDatabase(t)

	notDump := s.upload([]byte("-- PostgreSQL database dump\nCREATE TABLE x (id int);\n"))
	j := s.finish(s.restore(map[string]any{"upload_id": notDump, "target_database_url": target}), 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "not_a_dump" || !strings.Contains(j.Error.Message, "plain SQL dump") {
		t.Fatalf("restore of a SQL file: %s %+v", j.Status, j.Error)
	}
	if n := tableCount(t, target); n != 0 {
		t.Fatalf("the target has %d tables after a refused restore", n)
	}

	b := s.finish(s.backup(""), time.Minute)
	dump := s.checkBackup(b, "")
	up := s.upload(dump)
	dry := s.finish(s.restore(map[string]any{"upload_id": up, "target_database_url": target, "dry_run": true}), 30*time.Second)
	if dry.Status != "succeeded" || dry.Result.Details["toc_entries"] != b.Result.Details["toc_entries"] || dry.Result.Details["dry_run"] != true {
		t.Fatalf("dry run: %s %+v %v", dry.Status, dry.Error, dry.Result)
	}
	if n := tableCount(t, target); n != 0 {
		t.Fatalf("the target has %d tables after a dry run", n)
	}

	real := s.finish(s.restore(map[string]any{"upload_id": up, "target_database_url": target, "skip_logs": true}), time.Minute)
	if real.Status != "succeeded" || real.Result.Details["errors"] != float64(0) {
		t.Fatalf("restore: %s %+v %v", real.Status, real.Error, real.Result)
	}
	got := fingerprint(t, target)
	if logs := got["public.message_request"]; logs.Rows != 0 || got["public.users"].Rows == 0 {
		t.Errorf("skip_logs restore: message_request %v, users %v", logs, got["public.users"])
	}
	// The upload is gone after a successful restore.
	r := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "database_restore", "params": map[string]any{"upload_id": up}})
	if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || fields["params.upload_id"] == "" {
		t.Errorf("restore of a used upload: %d %s", r.status, r.body)
	}
}

// A restore into a target that does not answer fails clearly, without the
// target's password.
func TestRestoreUnreachableTarget(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	b := s.finish(s.backup("ledger_only"), time.Minute)
	s.checkBackup(b, "_ledger-only")
	target := "postgres://postgres:hunter2@" + freeAddr(t) + "/nowhere?connect_timeout=3"
	j := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "restore_target_unreachable" || j.Attempts != 1 {
		t.Fatalf("restore into nowhere: %s after %d attempts, %+v", j.Status, j.Attempts, j.Error)
	}
	if strings.Contains(j.Error.Message, "hunter2") || !strings.Contains(j.Error.Message, "nothing was restored") {
		t.Errorf("message %q", j.Error.Message)
	}
}

// Requests the API refuses before any job exists.
func TestBackupRestoreBadRequests(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	probe := s.create(adminToken, map[string]any{"type": "probe_logs"})
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"bad mode":          {map[string]any{"type": "database_backup", "params": map[string]any{"mode": "excludeLogs"}}, "params.mode"},
		"no source":         {map[string]any{"type": "database_restore", "params": map[string]any{}}, "params.backup_job_id"},
		"two sources":       {map[string]any{"type": "database_restore", "params": map[string]any{"backup_job_id": probe.ID, "upload_id": "upl_0123456789abcdef0123456789abcdef"}}, "params.upload_id"},
		"not a backup":      {map[string]any{"type": "database_restore", "params": map[string]any{"backup_job_id": probe.ID}}, "params.backup_job_id"},
		"no such job":       {map[string]any{"type": "database_restore", "params": map[string]any{"backup_job_id": "exp_01NOPE"}}, "params.backup_job_id"},
		"nothing uploaded":  {map[string]any{"type": "database_restore", "params": map[string]any{"upload_id": "upl_0123456789abcdef0123456789abcdef"}}, "params.upload_id"},
		"mysql target":      {map[string]any{"type": "database_restore", "params": map[string]any{"backup_job_id": probe.ID, "target_database_url": "mysql://x"}}, "params.target_database_url"},
		"broken target URL": {map[string]any{"type": "database_restore", "params": map[string]any{"backup_job_id": probe.ID, "target_database_url": "postgres://u:%zz@h/x"}}, "params.target_database_url"},
	} {
		r := s.do("POST", "/api/v1/exports", adminToken, tc.body)
		code, fields := r.errorCode(t)
		if r.status != 400 || code != "invalid_request" || fields[tc.field] == "" {
			t.Errorf("%s: %d %s; want 400 naming %s", name, r.status, r.body, tc.field)
		}
	}
	// Users may do none of it.
	for _, body := range []map[string]any{{"type": "database_backup"}, {"type": "database_restore", "params": map[string]any{"backup_job_id": probe.ID}}} {
		if r := s.do("POST", "/api/v1/exports", seed.UserKey, body); r.status != 403 {
			t.Errorf("user asks for %v: %d %s", body["type"], r.status, r.body)
		}
	}
	if r := s.do("POST", "/api/v1/restores/uploads", seed.UserKey, nil); r.status != 403 {
		t.Errorf("user asks for an upload URL: %d %s", r.status, r.body)
	}
}

// The same on S3 (versitygw, which checks signatures): the backup streams
// into a multipart upload, the restore reads it back, and a restore's dump
// is PUT to a presigned URL signed for the public endpoint.
func TestBackupRestoreS3(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	s := newStack(t, withS3(bucket, bucket.Endpoint))
	s.start("serve")
	want := fingerprint(t, s.dsn)

	b := s.finish(s.backup(""), time.Minute)
	dump := s.checkBackup(b, "")
	target := emptyDatabase(t)
	r := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if r.Status != "succeeded" {
		t.Fatalf("restore: %s %+v", r.Status, r.Error)
	}
	sameTables(t, fingerprint(t, target), want)

	tk := s.ticket(dump)
	if !strings.HasPrefix(tk.URL, bucket.Endpoint+"/") || !strings.Contains(tk.URL, "X-Amz-Signature=") || tk.MaxBytes != 5<<30 {
		t.Fatalf("upload ticket %+v", tk)
	}
	bad := s.upload([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0})
	j := s.finish(s.restore(map[string]any{"upload_id": bad, "target_database_url": target}), 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "not_a_dump" || !strings.Contains(j.Error.Message, "gzip") {
		t.Fatalf("restore of a gzip file: %s %+v", j.Status, j.Error)
	}
	up := s.upload(dump)
	dry := s.finish(s.restore(map[string]any{"upload_id": up, "dry_run": true}), 30*time.Second)
	if dry.Status != "succeeded" || dry.Result.Details["toc_entries"] != b.Result.Details["toc_entries"] {
		t.Fatalf("dry run: %s %+v", dry.Status, dry.Error)
	}
	if _, ups := bucketLeftovers(t, bucket); ups != 0 {
		t.Errorf("%d multipart uploads left", ups)
	}

	// An upload overwritten behind hubexport's back is not restored.
	swapped := s.upload(dump)
	if _, err := s3Client(bucket).PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket.Bucket,
		Key: aws.String("hx/uploads/" + swapped + ".dump"), Body: bytes.NewReader(markerDump(t))}); err != nil {
		t.Fatal(err)
	}
	target2 := emptyDatabase(t)
	j = s.finish(s.restore(map[string]any{"upload_id": swapped, "target_database_url": target2}), time.Minute)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "dump_checksum_mismatch" {
		t.Fatalf("restore of a swapped upload: %s %+v", j.Status, j.Error)
	}
	if n := tableCount(t, target2); n != 0 {
		t.Fatalf("the target has %d tables after a refused restore", n)
	}
}
