package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

type manifestTable struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	Rows         int64  `json:"rows"`
	DataExcluded bool   `json:"data_excluded"`
}

type manifest struct {
	FormatVersion int             `json:"format_version"`
	JobID         string          `json:"job_id"`
	Mode          string          `json:"mode"`
	ServerVersion string          `json:"server_version"`
	Tables        []manifestTable `json:"tables"`
	TotalRows     int64           `json:"total_rows"`
}

func manifestOf(t *testing.T, j backupJob) manifest {
	t.Helper()
	b, err := json.Marshal(j.Result.Details["manifest"])
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil || m.FormatVersion != 1 {
		t.Fatalf("details.manifest %s: %v", b, err)
	}
	return m
}

// The manifest counts the rows the dump holds, exactly, while rows keep
// being inserted during the backup; it is stored beside the artifact and
// deleted with it.
func TestBackupManifestMatchesDump(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.exec(`CREATE TABLE public.drill_ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`)
	s.start("serve")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var inserted atomic.Int64
	done := make(chan struct{})
	pool := s.pool()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := pool.Exec(ctx, `INSERT INTO public.drill_ticks DEFAULT VALUES`); err == nil {
				inserted.Add(1)
			}
		}
	}()
	until(t, 10*time.Second, "inserts start", func() bool { return inserted.Load() > 50 })
	// Hold pg_dump on a table lock after it took its snapshot, so rows
	// keep arriving between the snapshot and the dump's read.
	release := s.holdTable("users")
	id := s.backup("")
	until(t, 20*time.Second, "pg_dump starts", func() bool { return s.pgDumps() > 0 })
	before := inserted.Load()
	until(t, 10*time.Second, "more inserts during the dump", func() bool { return inserted.Load() > before+200 })
	release()
	b := s.finish(id, time.Minute)
	stop()
	<-done
	s.checkBackup(b, "")

	m := manifestOf(t, b)
	if m.JobID != b.ID || m.Mode != "full" || !strings.HasPrefix(m.ServerVersion, "1") || len(m.Tables) < 8 {
		t.Fatalf("manifest %+v", m)
	}
	target := emptyDatabase(t)
	r := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if r.Status != "succeeded" {
		t.Fatalf("restore: %s %+v", r.Status, r.Error)
	}
	got := fingerprint(t, target)
	var total int64
	for _, tb := range m.Tables {
		name := tb.Schema + "." + tb.Name
		if g, ok := got[name]; !ok || g.Rows != tb.Rows {
			t.Errorf("table %s: manifest says %d rows, the restored dump holds %d (present %v)", name, tb.Rows, g.Rows, ok)
		}
		total += tb.Rows
		delete(got, name)
	}
	if len(got) != 0 {
		t.Errorf("tables in the dump but not in the manifest: %v", got)
	}
	if total != m.TotalRows {
		t.Errorf("total_rows %d, tables sum to %d", m.TotalRows, total)
	}
	var live int64
	_ = s.pool().QueryRow(context.Background(), `SELECT count(*) FROM public.drill_ticks`).Scan(&live)
	var ticks int64
	for _, tb := range m.Tables {
		if tb.Name == "drill_ticks" {
			ticks = tb.Rows
		}
	}
	if ticks == 0 || ticks >= live {
		t.Errorf("drill_ticks: manifest %d rows, %d now: the inserts did not overlap the dump", ticks, live)
	}

	// Beside the artifact, the same manifest.
	artifact := filepath.Join(dir, "backups", b.ID, b.Result.Filename)
	raw, err := os.ReadFile(artifact + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var side manifest
	if err := json.Unmarshal(raw, &side); err != nil || side.TotalRows != m.TotalRows || len(side.Tables) != len(m.Tables) {
		t.Fatalf("manifest file %s: %v", raw, err)
	}
	// Deleting the artifact deletes its manifest.
	if r := s.do("DELETE", "/api/v1/exports/"+b.ID, adminToken, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, f := range []string{artifact, artifact + ".manifest.json"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still there after the delete: %v", f, err)
		}
	}
}

func (s *stack) verify(backupID string, checks ...string) string {
	s.t.Helper()
	params := map[string]any{"backup_job_id": backupID}
	if len(checks) > 0 {
		params["checks"] = checks
	}
	return s.create(adminToken, map[string]any{"type": "backup_verify", "params": params}).ID
}

// scratchDatabases lists the drills' scratch databases on the test server.
func (s *stack) scratchDatabases() []string {
	s.t.Helper()
	rows, err := s.pool().Query(context.Background(), `SELECT datname FROM pg_database WHERE datname LIKE 'hubexport\_verify\_%' ORDER BY 1`)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

func hasScratch(names []string, jobID string) bool {
	for _, n := range names {
		if n == "hubexport_verify_"+strings.ToLower(jobID) {
			return true
		}
	}
	return false
}

type drillTable struct {
	Table    string `json:"table"`
	Expected int64  `json:"expected"`
	Actual   int64  `json:"actual"`
	OK       bool   `json:"ok"`
}

func drillTables(t *testing.T, j backupJob) []drillTable {
	t.Helper()
	b, _ := json.Marshal(j.Result.Details["tables"])
	var out []drillTable
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A good backup passes its drill: every table restored with the manifest's
// count, the checks true, the scratch database gone. A failing check fails
// the drill naming it; a non-SELECT check is refused at the request.
func TestBackupVerifyDrill(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	m := manifestOf(t, b)

	v := s.finish(s.verify(b.ID, "SELECT count(*) > 0 FROM public.users", "with k as (select count(*) n from public.keys) select n > 0 from k;"), 2*time.Minute)
	if v.Status != "succeeded" || v.Result.Details["passed"] != true {
		t.Fatalf("drill: %s %+v %v", v.Status, v.Error, v.Result)
	}
	tables := drillTables(t, v)
	if len(tables) != len(m.Tables) {
		t.Fatalf("drill compared %d tables, manifest has %d", len(tables), len(m.Tables))
	}
	for i, tb := range tables {
		if want := m.Tables[i]; tb.Table != want.Schema+"."+want.Name || tb.Expected != want.Rows || tb.Actual != want.Rows || !tb.OK {
			t.Errorf("table line %+v, manifest %+v", tb, want)
		}
	}
	if d, _ := v.Result.Details["duration_ms"].(float64); d <= 0 {
		t.Errorf("duration_ms %v", v.Result.Details["duration_ms"])
	}
	if hasScratch(s.scratchDatabases(), v.ID) {
		t.Errorf("scratch database of %s left behind", v.ID)
	}

	// The command line runs a drill and prints its report.
	r := cli(t, t.TempDir(), nil, "verify", "--server", s.base, "--token", adminToken, "--backup-job-id", b.ID,
		"--check", "SELECT count(*) > 0 FROM public.providers", "--wait")
	if r.code != 0 || !strings.Contains(r.stderr, `"passed": true`) || !strings.Contains(r.stderr, `"table": "public.users"`) {
		t.Errorf("hubexport export verify: exit %d\nstderr: %s", r.code, r.stderr)
	}

	f := s.finish(s.verify(b.ID, "SELECT count(*) = -1 FROM public.users"), 2*time.Minute)
	if f.Status != "failed" || f.Error == nil || f.Error.Code != "verify_failed" ||
		!strings.Contains(f.Error.Message, "at checks") || !strings.Contains(f.Error.Message, "count(*) = -1") {
		t.Fatalf("failing check: %s %+v", f.Status, f.Error)
	}
	if hasScratch(s.scratchDatabases(), f.ID) {
		t.Errorf("scratch database of the failed drill %s left behind", f.ID)
	}

	for _, tc := range []struct {
		params map[string]any
		field  string
	}{
		{map[string]any{"backup_job_id": b.ID, "checks": []string{"DELETE FROM users"}}, "params.checks[0]"},
		{map[string]any{"backup_job_id": b.ID, "checks": []string{"SELECT 1; DROP TABLE users"}}, "params.checks[0]"},
		{map[string]any{}, "params.backup_job_id"},
		{map[string]any{"backup_job_id": v.ID}, "params.backup_job_id"},
	} {
		r := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "backup_verify", "params": tc.params})
		if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || fields[tc.field] == "" {
			t.Errorf("%v: %d %s", tc.params, r.status, r.body)
		}
	}
}

// A backup whose object was damaged in storage fails its drill, naming
// the step that caught it; the scratch database is dropped.
func TestBackupVerifyCorrupted(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	path := filepath.Join(dir, "backups", b.ID, b.Result.Filename)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the data blocks, keeping the header and table of contents.
	for i := len(data) * 2 / 3; i < len(data)*2/3+256 && i < len(data); i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	v := s.finish(s.verify(b.ID), 2*time.Minute)
	if v.Status != "failed" || v.Error == nil || v.Error.Code != "verify_failed" ||
		!strings.Contains(v.Error.Message, "restore drill failed at ") {
		t.Fatalf("drill of a damaged backup: %s %+v", v.Status, v.Error)
	}
	t.Logf("drill error: %s", v.Error.Message)
	if hasScratch(s.scratchDatabases(), v.ID) {
		t.Errorf("scratch database of %s left behind", v.ID)
	}
}

// A drill follows the backup lock rules: while a backup holds the lock,
// the drill waits for it (visibly) and runs no pg_restore; it restores once
// the backup has released the lock.
func TestBackupVerifyWaitsForBackup(t *testing.T) {
	t.Parallel()
	// Two backup slots, so the drill runs beside the backup and waits on the
	// lock itself (with one, it would wait in the queue).
	s := newStack(t, withEnv("WORKER_CONCURRENCY", "4"), withEnv("BACKUP_CONCURRENCY", "2"))
	p := s.start("serve")
	first := s.finish(s.backup(""), time.Minute)

	release := s.holdTable("users")
	running := s.backup("exclude_logs")
	until(t, 20*time.Second, "the second backup's pg_dump starts", func() bool { return s.pgDumps() > 0 })
	v := s.verify(first.ID)
	until(t, 20*time.Second, "the drill waiting for the backup lock", func() bool {
		j := s.job(v)
		return j.Status == "running" && strings.HasPrefix(j.Progress.Note, "waiting for the backup lock")
	})
	time.Sleep(time.Second)
	for _, l := range events(t, "pg_restore_start", p) {
		if l.JobID == v {
			t.Fatalf("the drill ran pg_restore while the backup held the lock")
		}
	}
	release()
	if b := s.finish(running, time.Minute); b.Status != "succeeded" {
		t.Fatalf("backup: %s %+v", b.Status, b.Error)
	}
	if d := s.finish(v, 2*time.Minute); d.Status != "succeeded" {
		t.Fatalf("drill: %s %+v", d.Status, d.Error)
	}
	var released, acquired time.Time
	for _, l := range events(t, "backup_lock_released", p) {
		if l.JobID == running {
			released = l.Time
		}
	}
	for _, l := range events(t, "backup_lock_acquired", p) {
		if l.JobID == v {
			acquired = l.Time
		}
	}
	if released.IsZero() || acquired.IsZero() || acquired.Before(released) {
		t.Errorf("backup released the lock at %v, the drill took it at %v", released, acquired)
	}
}

// The scratch database never survives a crash: a worker killed with
// SIGKILL in the middle of a drill's pg_restore leaves it behind, and the
// maintenance pass of another worker drops it once the drill's lease has
// lapsed. The drill then runs again and passes.
func TestBackupVerifyCrashDropsScratch(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("CLEANUP_INTERVAL", "1s"))
	api := s.start("api")
	w1 := s.start("worker")
	b := s.finish(s.backup(""), time.Minute)
	m := manifestOf(t, b)
	last := ""
	for _, tb := range m.Tables {
		if tb.Schema == "public" && tb.Name > last {
			last = tb.Name
		}
	}

	// Hold the drill at the lock until a blocker for the last table pg_restore creates is in place.
	rdb := s.hubRedis()
	ctx := context.Background()
	if err := rdb.Set(ctx, "database:backup:lock", "1769688000000-k3x9a2", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	v := s.verify(b.ID)
	until(t, 20*time.Second, "the scratch database exists", func() bool { return hasScratch(s.scratchDatabases(), v) })
	u, err := url.Parse(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/hubexport_verify_" + strings.ToLower(v)
	blocker, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE public."+pgx.Identifier{last}.Sanitize()+" (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, "database:backup:lock").Err(); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "pg_restore is blocked mid-restore", func() bool {
		var n int
		_ = s.pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_restore' AND wait_event_type = 'Lock'`,
			strings.TrimPrefix(u.Path, "/")).Scan(&n)
		return n > 0
	})
	w1.Kill()
	_ = tx.Rollback(ctx)
	if !hasScratch(s.scratchDatabases(), v) {
		t.Fatal("the scratch database is gone before any cleanup ran")
	}

	// Every role runs the maintenance pass: whichever gets there first drops it.
	w2 := s.start("worker")
	sched := s.start("scheduler")
	until(t, 60*time.Second, "the maintenance pass drops the orphaned scratch database", func() bool {
		for _, p := range []*proc{api, w2, sched} {
			if len(events(t, "scratch_database_orphan_dropped", p)) > 0 {
				return true
			}
		}
		return false
	})
	if hasScratch(s.scratchDatabases(), v) && s.job(v).Attempts < 2 {
		t.Fatal("the scratch database is still there")
	}
	// The killed attempt's backup lock lapses with its 5-minute TTL (as
	// CCH's own would); end it now rather than wait.
	if err := rdb.Del(ctx, "database:backup:lock").Err(); err != nil {
		t.Fatal(err)
	}
	d := s.finish(v, 3*time.Minute)
	if d.Status != "succeeded" || d.Attempts < 2 {
		t.Fatalf("drill after the crash: %s after %d attempts %+v", d.Status, d.Attempts, d.Error)
	}
	if hasScratch(s.scratchDatabases(), v) {
		t.Error("scratch database left behind")
	}
}

// The web page offers a drill on a succeeded backup; the drill's card shows
// it passed and how many tables matched.
func TestBrowserVerifyBackup(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	tab := newTab(t)
	tab.signIn(s.base, adminToken)
	card := `document.querySelector('li.job[data-id="` + b.ID + `"]')`
	tab.waitFor(card+` && !`+card+`.querySelector('.verify').hidden`, 10*time.Second)
	if got := tab.text(`li.job[data-id="` + b.ID + `"] .verify`); got != "Verify (restore drill)" {
		t.Errorf("button %q", got)
	}
	tab.do(chromedp.Click(`li.job[data-id="` + b.ID + `"] .verify`))
	drill := `[...document.querySelectorAll('li.job')].find(n => n.querySelector('.type').textContent === 'Backup restore drill')`
	tab.waitFor(drill+` && `+drill+`.dataset.status === 'succeeded'`, time.Minute)
	details := eval[string](tab, `[...`+drill+`.querySelectorAll('dl.job-details > div')].map(d => d.querySelector('dt').textContent + ': ' + d.querySelector('dd').textContent).join('\n')`)
	if !strings.Contains(details, "Passed: yes\n") || !strings.Contains(details, "Backup: "+b.ID+"\n") || !regexp.MustCompile(`(?m)^Tables: (\d+) of (\d+) match$`).MatchString(details) {
		t.Errorf("drill card details %q", details)
	}
	if !eval[bool](tab, drill+`.querySelector('.verify').hidden && `+drill+`.querySelector('.download').hidden`) {
		t.Error("a drill's card offers a download or another drill")
	}

	// The schedules page sets a verify policy and shows a failed drill.
	tab.do(chromedp.Click(`#nav a[data-page="schedules"]`), chromedp.WaitVisible("#schedule-form"),
		chromedp.SetValue("#sc-name", "drilled"), chromedp.SetValue("#sc-cron", "0 3 * * *"),
		chromedp.SetValue("#sc-verify-every_nth", "3"))
	if v := eval[string](tab, `(() => { const s = document.getElementById('sc-verify'); s.value = 'every_nth'; return s.value })()`); v != "every_nth" {
		t.Fatalf("verify select holds %q", v)
	}
	tab.do(chromedp.Click(`#schedule-form button[type="submit"]`))
	item := `[...document.querySelectorAll('#schedules .schedule')].find(n => n.querySelector('.title').textContent === 'drilled')`
	tab.waitFor(`!!`+item, 10*time.Second)
	var sc struct {
		Data []struct {
			ID     string `json:"id"`
			Verify any    `json:"verify"`
		} `json:"data"`
	}
	s.do("GET", "/api/v1/schedules", adminToken, nil).json(t, &sc)
	if len(sc.Data) != 1 || fmt.Sprint(sc.Data[0].Verify) != "map[every_nth:3]" {
		t.Fatalf("schedules %+v", sc)
	}
	if got := eval[string](tab, item+`.textContent`); !strings.Contains(got, "drill every 3 backups") || strings.Contains(got, "drill failed") {
		t.Errorf("schedule item %q", got)
	}
	s.exec(`UPDATE hubexport.schedules SET last_verify_job_id = 'exp_X', last_verify_at = now(), last_verify_passed = false WHERE id = $1`, sc.Data[0].ID)
	tab.do(chromedp.Click(`#nav a[data-page="exports"]`), chromedp.WaitVisible("#page-exports"),
		chromedp.Click(`#nav a[data-page="schedules"]`))
	tab.waitFor(`!!`+item+` && `+item+`.querySelector('.verify-failed') !== null`, 10*time.Second)
	if got := eval[string](tab, item+`.textContent`); !strings.Contains(got, "The latest restore drill failed") || !strings.Contains(got, "exp_X") {
		t.Errorf("schedule item after a failed drill %q", got)
	}
}

type verifiedEvent struct {
	Type string `json:"type"`
	Data struct {
		ScheduleID  string         `json:"schedule_id"`
		DrillJobID  string         `json:"drill_job_id"`
		BackupJobID string         `json:"backup_job_id"`
		Passed      bool           `json:"passed"`
		Error       map[string]any `json:"error"`
	} `json:"data"`
}

type scheduleVerify struct {
	Verify     any `json:"verify"`
	LastVerify *struct {
		JobID  string `json:"job_id"`
		Passed bool   `json:"passed"`
	} `json:"last_verify"`
	LastVerifiedAt *time.Time `json:"last_verified_at"`
	Healthy        bool       `json:"healthy"`
	OverdueSince   *time.Time `json:"overdue_since"`
}

// A schedule with verify "every" drills its backups: each drill's outcome
// is a backup.verified event, the schedule's last_verify and the
// hubexport_backup_last_verified_timestamp_seconds metric.
func TestScheduleVerifyEvery(t *testing.T) {
	t.Parallel()
	s := newStack(t, withFastSchedules(), withPrivateWebhooks())
	s.start("serve")
	recv := newHookReceiver(t)
	h := s.createHook(adminToken, map[string]any{"url": recv.url(), "events": []string{"backup.verified", "backup.verify_failed"}})
	recv.trust(h.Secret)

	sc := s.createSchedule(map[string]any{"name": "drilled", "cron": "@every 3s", "verify": "every"})
	got := recv.waitFor(1, 90*time.Second)
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	var ev verifiedEvent
	if err := json.Unmarshal(got[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "backup.verified" || ev.Data.ScheduleID != sc.ID || !ev.Data.Passed || ev.Data.BackupJobID == "" {
		t.Fatalf("event %s", got[0].body)
	}
	drill := s.job(ev.Data.DrillJobID)
	if drill.Type != "backup_verify" || drill.Status != "succeeded" || drill.Params["backup_job_id"] != ev.Data.BackupJobID {
		t.Fatalf("drill %+v", drill)
	}
	if b := s.job(ev.Data.BackupJobID); b.Status != "succeeded" {
		t.Fatalf("drilled backup %+v", b)
	}
	var read scheduleVerify
	s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil).json(t, &read)
	if read.Verify != "every" || read.LastVerify == nil || !read.LastVerify.Passed || read.LastVerifiedAt == nil || !read.Healthy {
		t.Fatalf("schedule after a passing drill: %+v", read)
	}
	if m := s.do("GET", "/metrics", "", nil); !strings.Contains(string(m.body), `hubexport_backup_last_verified_timestamp_seconds{schedule="`+sc.ID+`"}`) {
		t.Errorf("no last-verified metric for %s", sc.ID)
	}
	if r := s.do("GET", "/api/v1/schedules/health", adminToken, nil); r.status != 200 || !strings.Contains(string(r.body), `"`+sc.ID+`":"disabled"`) {
		t.Errorf("schedule health: %d %s", r.status, r.body)
	}
}

// A scheduled drill that fails (here: its scratch database cannot be
// created) is a backup.verify_failed event, and the schedule turns
// unhealthy and overdue.
func TestScheduleVerifyFailedIsUnhealthy(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse(testenv.PostgresServer(t))
	u.User = url.User("no_such_role_for_drills")
	s := newStack(t, withFastSchedules(), withPrivateWebhooks(), withEnv("VERIFY_DATABASE_URL", u.String()))
	s.start("serve")
	recv := newHookReceiver(t)
	h := s.createHook(adminToken, map[string]any{"url": recv.url(), "events": []string{"backup.verify_failed", "backup.overdue"}})
	recv.trust(h.Secret)

	sc := s.createSchedule(map[string]any{"name": "broken drills", "cron": "@every 3s", "verify": map[string]any{"every_nth": 1}})
	until(t, 90*time.Second, "backup.verify_failed and backup.overdue", func() bool {
		types := map[string]bool{}
		for _, r := range recv.requests() {
			var ev verifiedEvent
			_ = json.Unmarshal(r.body, &ev)
			types[ev.Type] = true
		}
		return types["backup.verify_failed"] && types["backup.overdue"]
	})
	r := s.do("GET", "/api/v1/schedules/health", adminToken, nil)
	var health struct {
		Status    string            `json:"status"`
		Schedules map[string]string `json:"schedules"`
	}
	r.json(t, &health)
	if r.status != 503 || health.Status != "unhealthy" || !strings.Contains(health.Schedules[sc.ID], "restore drill") {
		t.Errorf("schedule health: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/api/v1/schedules/health", seed.UserKey, nil); r.status != 403 {
		t.Errorf("a user reads the schedule health: %d", r.status)
	}
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	var read scheduleVerify
	s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil).json(t, &read)
	if read.LastVerify == nil || read.LastVerify.Passed || read.Healthy {
		t.Fatalf("schedule after a failed drill: %+v", read)
	}
	for _, r := range recv.requests() {
		var ev verifiedEvent
		_ = json.Unmarshal(r.body, &ev)
		if ev.Type == "backup.verify_failed" && (ev.Data.Passed || ev.Data.Error["code"] != "verify_database_unavailable") {
			t.Errorf("event %s", r.body)
		}
	}
}

// A canceled drill drops its scratch database too.
func TestBackupVerifyCancelDropsScratch(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	// CCH holds the lock: the drill waits with its scratch database made.
	rdb := s.hubRedis()
	if err := rdb.Set(context.Background(), "database:backup:lock", "1769688000000-k3x9a2", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	v := s.verify(b.ID)
	until(t, 20*time.Second, "the drill waiting for the lock with its scratch database", func() bool {
		return hasScratch(s.scratchDatabases(), v) && strings.HasPrefix(s.job(v).Progress.Note, "waiting for the backup lock")
	})
	if r := s.do("DELETE", "/api/v1/exports/"+v, adminToken, nil); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if j := s.finish(v, time.Minute); j.Status != "canceled" {
		t.Fatalf("drill %s", j.Status)
	}
	until(t, 20*time.Second, "the scratch database dropped", func() bool { return !hasScratch(s.scratchDatabases(), v) })
}

// On S3 the manifest sits beside the dump, a drill reads the dump from the
// bucket, and deleting the backup leaves the bucket empty.
func TestBackupVerifyS3(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	s := newStack(t, withS3(bucket, bucket.Endpoint))
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	if objs, _ := bucketLeftovers(t, bucket); objs != 2 {
		t.Fatalf("bucket holds %d objects, want the dump and its manifest", objs)
	}
	if v := s.finish(s.verify(b.ID), 2*time.Minute); v.Status != "succeeded" || v.Result.Details["passed"] != true {
		t.Fatalf("drill: %s %+v", v.Status, v.Error)
	}
	if r := s.do("DELETE", "/api/v1/exports/"+b.ID, adminToken, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if objs, ups := bucketLeftovers(t, bucket); objs != 0 || ups != 0 {
		t.Errorf("after the delete: %d objects, %d uploads", objs, ups)
	}
}

// VERIFY_DATABASE_URL may be a role that has CREATEDB and nothing more:
// the drill restores into the database it created, owning what it makes.
func TestBackupVerifyAsCreatedbRole(t *testing.T) {
	t.Parallel()
	admin := testenv.PostgresServer(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	role := "drill_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))[len("test"):]
	role = role[:min(len(role), 40)]
	if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN CREATEDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})
	u, _ := url.Parse(admin)
	u.User = url.User(role)
	s := newStack(t, withEnv("VERIFY_DATABASE_URL", u.String()))
	s.start("serve")
	b := s.finish(s.backup(""), time.Minute)
	v := s.finish(s.verify(b.ID, "SELECT count(*) > 0 FROM public.users"), 2*time.Minute)
	if v.Status != "succeeded" || v.Result.Details["passed"] != true {
		t.Fatalf("drill as a CREATEDB role: %s %+v", v.Status, v.Error)
	}
	if hasScratch(s.scratchDatabases(), v.ID) {
		t.Error("scratch database left behind")
	}
}

// Backups that leave the request logs out pass their drills: exclude_logs
// expects message_request empty, ledger_only expects no such table.
func TestBackupVerifyModes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	for _, mode := range []string{"exclude_logs", "ledger_only"} {
		b := s.finish(s.backup(mode), time.Minute)
		m := manifestOf(t, b)
		var logs *manifestTable
		for i, tb := range m.Tables {
			if tb.Name == "message_request" {
				logs = &m.Tables[i]
			}
		}
		switch {
		case mode == "exclude_logs" && (logs == nil || !logs.DataExcluded || logs.Rows != 0):
			t.Errorf("exclude_logs manifest: message_request %+v", logs)
		case mode == "ledger_only" && logs != nil:
			t.Errorf("ledger_only manifest lists message_request %+v", logs)
		}
		v := s.finish(s.verify(b.ID), 2*time.Minute)
		if v.Status != "succeeded" || v.Result.Details["passed"] != true || v.Result.Details["mode"] != mode {
			t.Errorf("%s drill: %s %+v", mode, v.Status, v.Error)
		}
	}
}
