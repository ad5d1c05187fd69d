package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/hubexport/hubexport/internal/seed"
)

// rawName is a JSON name shown as is ("toc_entries"), not worded.
var rawName = regexp.MustCompile(`^[a-z0-9]+_[a-z0-9_]+$`)

// chromiumPath is Debian's Chromium (package chromium).
const chromiumPath = "/usr/bin/chromium"

// tab is a headless Chromium tab and the console messages its pages wrote.
type tab struct {
	t     *testing.T // the (sub)test now driving the tab
	owner *testing.T // the test that started it
	ctx   context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab starts a headless Chromium with a fresh profile. A missing Chromium
// fails the test: the page is only tested in a real browser.
func newTab(t *testing.T) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (Debian: apt-get install chromium): %v", chromiumPath, err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		// Without these, Chromium calls Google's hosts, which a closed network refuses.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The browser lives as long as ctx: start it outside any step's deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &tab{t: t, owner: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(b.checkConsole)
	return b
}

// checkConsole fails the test on an uncaught exception or a CSP violation:
// the page must work under its own policy. Failed requests (a 401 for a bad
// token, a 400 for bad input) are expected and shown by the page.
func (b *tab) checkConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || m.Source == "security" {
			b.owner.Errorf("browser console: %s", m)
		}
	}
}

// do runs steps within a deadline.
func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval returns the value of a JavaScript expression on the page.
func eval[T any](b *tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true.
func (b *tab) waitFor(js string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("waiting for %s: %v\npage text:\n%s", js, err, body)
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, `document.querySelector(`+jsString(sel)+`).textContent`)
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

func (b *tab) signIn(base, token string) {
	b.t.Helper()
	// Signed out first, whatever an earlier step left behind.
	b.do(chromedp.Navigate(base+"/"), chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`), chromedp.Reload(),
		chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#page-exports"))
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	usageE2EFixture(s)
	srv := s.start("serve")
	b := newTab(t)
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatalf("set the download folder: %v", err)
	}

	// A bad token: the API's words, and still signed out.
	b.do(chromedp.Navigate(s.base+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", "sk-not-a-key"), chromedp.Click("#signin"))
	b.waitFor(`!document.getElementById('signin-error').hidden`, 10*time.Second)
	if got := b.text("#signin-error"); got != "send a valid API key or the admin token as 'Authorization: Bearer <token>'" {
		t.Errorf("bad token: %q", got)
	}

	t.Run("admin exports usage logs", func(t *testing.T) {
		b.t = t
		// A laptop's window: times must not wrap at this width.
		b.do(chromedp.EmulateViewport(1280, 800))
		b.signIn(s.base, adminToken)
		if who := b.text("#whoami"); !strings.Contains(who, "Admin Token") || !strings.Contains(who, "admin") {
			t.Errorf("whoami %q", who)
		}
		if pages := eval[[]string](b, `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`); !slices.Equal(pages, []string{"exports", "schedules", "webhooks", "audit"}) {
			t.Errorf("admin's pages %q", pages)
		}
		// Every type the server runs for an admin, in the page's order.
		var me struct {
			ExportTypes []string `json:"export_types"`
		}
		s.do("GET", "/api/v1/me", adminToken, nil).json(t, &me)
		var want []string
		for _, typ := range []string{"usage_logs", "probe_logs", "database_backup", "session_request"} {
			if slices.Contains(me.ExportTypes, typ) {
				want = append(want, typ)
			}
		}
		if types := eval[[]string](b, `[...document.querySelectorAll('#type-tabs button')].map(b => b.dataset.type)`); !slices.Equal(types, want) || len(want) < 2 {
			t.Errorf("admin's export types %q, want %q", types, want)
		}
		// The admin's selectors are filled from the hub.
		b.waitFor(`document.querySelectorAll('[name=user_id] option').length > 10 && document.querySelectorAll('[name=provider_id] option').length > 5`, 10*time.Second)

		// The pickers read wall-clock times in the chosen zone: 08:00 in Shanghai is midnight UTC,
		// the same window as the API-level test, so the file must be the same bytes.
		b.do(
			chromedp.SetValue("#f-timezone", "Asia/Shanghai"),
			chromedp.SetValue("#f-start_time", "2026-02-01T08:00"),
			chromedp.SetValue("#f-end_time", "2026-02-02T08:00"),
			chromedp.SetValue("#f-header_lang", "en"),
			chromedp.Click("#create"),
		)
		b.waitFor(`document.querySelector('#jobs li.job') !== null`, 10*time.Second)
		id := eval[string](b, `document.querySelector('#jobs li.job').dataset.id`)
		card := `#jobs li.job[data-id="` + id + `"]`
		// The bar, fed by the job's event stream, reaches 100%.
		b.waitFor(`(() => { const c = document.querySelector('`+card+`');
			return c.dataset.status === 'succeeded' && c.querySelector('.bar').getAttribute('aria-valuenow') === '100'; })()`, 60*time.Second)
		if got := b.text(card + " .percent"); got != "100%" {
			t.Errorf("percent %q", got)
		}
		j := s.get(adminToken, id)
		if got := b.text(card + " .fact.sha256 dd"); got != j.Result.SHA256 {
			t.Errorf("page shows SHA-256 %q, job has %q", got, j.Result.SHA256)
		}
		if got := b.text(card + " .fact.rows dd"); got != "2" {
			t.Errorf("page shows %q rows", got)
		}
		// The params are a list of the form's labels and readable values, not key=value text.
		params := eval[[]string](b, `[...document.querySelectorAll('`+card+` dl.job-params > div')].map(d => d.querySelector('dt').textContent + ': ' + d.querySelector('dd').textContent)`)
		if !slices.Contains(params, "Time zone: Asia/Shanghai") || !slices.Contains(params, "Header language: English") {
			t.Errorf("params list %q", params)
		}
		for _, p := range params {
			if label, _, _ := strings.Cut(p, ": "); strings.Contains(label, "=") || rawName.MatchString(label) {
				t.Errorf("params line %q is raw", p)
			}
		}
		if from := eval[string](b, `[...document.querySelectorAll('`+card+` dl.job-params > div')].find(d => d.querySelector('dt').textContent === 'From')?.querySelector('dd').textContent || ''`); !strings.Contains(from, "2026") || strings.Contains(from, "T") {
			t.Errorf("From shows %q, want a readable time", from)
		}
		// English times stay on one line at 1280 px.
		if lines := eval[[]int](b, `[...document.querySelectorAll('`+card+` .fact.created dd, `+card+` .fact.finished dd, `+card+` .fact.expires dd')].map(dd => {
			const r = document.createRange(); r.selectNodeContents(dd); return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; })`); len(lines) != 3 || slices.Max(lines) != 1 {
			t.Errorf("time facts take %v lines, want 3 facts on one line each", lines)
		}
		if !strings.Contains(srv.Logs(), `"route":"/api/v1/exports/:id/events","status":200`) {
			t.Errorf("the page never opened the job's event stream")
		}

		// Download through the page, into the browser's download folder.
		b.do(chromedp.Click(card + " button.download"))
		file := filepath.Join(downloads, j.Result.Filename)
		var got []byte
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ = os.ReadFile(file)
			if int64(len(got)) == j.Result.SizeBytes {
				break
			}
			if time.Now().After(deadline) {
				entries, _ := os.ReadDir(downloads)
				t.Fatalf("no %d-byte %s downloaded after 30s; folder has %v", j.Result.SizeBytes, file, entries)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !bytes.HasPrefix(got, []byte("\uFEFFTime,User,Key,Provider,")) {
			t.Errorf("download does not start with the BOM and the header row: %q", got[:min(len(got), 60)])
		}
		if want := usageE2EHeader + usageE2EAdmin + usageE2EAlice; string(got) != want {
			t.Errorf("downloaded\n%q\nwant\n%q", got, want)
		}
		viaAPI, _, _ := s.download(adminToken, id)
		if !bytes.Equal(got, viaAPI) {
			t.Errorf("the browser's file (%d bytes) differs from the API's download (%d bytes)", len(got), len(viaAPI))
		}
		if href := eval[string](b, `document.querySelector('`+card+` a.link').href`); !strings.HasPrefix(href, s.base+"/api/v1/files/") {
			t.Errorf("download link %q", href)
		}
		// The link shown before a language switch follows it, words and date format.
		if got := b.text(card + " a.link"); !strings.HasPrefix(got, "Link (valid until ") {
			t.Errorf("link text %q", got)
		}
		b.do(chromedp.Click("#lang"))
		if got := b.text(card + " a.link"); !strings.HasPrefix(got, "下载链接（") || !strings.Contains(got, "年") {
			t.Errorf("link text after switching to Chinese: %q", got)
		}
		b.do(chromedp.Click("#lang"))
		if got := b.text(card + " a.link"); !strings.HasPrefix(got, "Link (valid until ") {
			t.Errorf("link text after switching back: %q", got)
		}

		// An encrypted backup: a bad recipient is named under its box, a good
		// one makes a .dump.age.
		recipient := stockAgeKey(t).recipient
		b.do(chromedp.Click(`#type-tabs button[data-type="database_backup"]`), chromedp.WaitVisible("#f-age_recipients"),
			chromedp.SetValue("#f-age_recipients", "# ops\nage1notakey"), chromedp.Click("#create"))
		b.waitFor(`!document.querySelector('[data-field="age_recipients"] .field-error').hidden`, 10*time.Second)
		if got := b.text(`[data-field="age_recipients"] .field-error`); !strings.Contains(got, "is not an age X25519 recipient") {
			t.Errorf("recipient error %q", got)
		}
		b.do(chromedp.SetValue("#f-age_recipients", "# ops\n"+recipient+"\n"), chromedp.Click("#f-encrypt"), chromedp.Click("#create"))
		b.waitFor(`document.querySelector('#jobs li.job[data-type="database_backup"], #jobs li.job:not([data-id="`+id+`"])') !== null`, 10*time.Second)
		backupID := eval[string](b, `document.querySelector('#jobs li.job:not([data-id="`+id+`"])').dataset.id`)
		bj := s.finish(backupID, time.Minute)
		if bj.Status != "succeeded" || !strings.HasSuffix(bj.Result.Filename, ".dump.age") || bj.Params["encrypt"] != true {
			t.Errorf("backup from the page: %s %+v params %v", bj.Status, bj.Result, bj.Params)
		}
		// A backup's details, listed with units.
		backupCard := `#jobs li.job[data-id="` + backupID + `"]`
		b.waitFor(`document.querySelector('`+backupCard+`').dataset.status === 'succeeded'`, 30*time.Second)
		details := eval[[]string](b, `[...document.querySelectorAll('`+backupCard+` dl.job-details > div')].map(d => d.querySelector('dt').textContent + ': ' + d.querySelector('dd').textContent)`)
		var sawSize, sawEncrypted bool
		for _, d := range details {
			sawSize = sawSize || (strings.HasPrefix(d, "Plaintext size: ") && strings.HasSuffix(d, "B"))
			sawEncrypted = sawEncrypted || d == "Encrypted: yes"
			if label, _, _ := strings.Cut(d, ": "); strings.Contains(label, "=") || rawName.MatchString(label) {
				t.Errorf("details line %q is raw", d)
			}
		}
		if !sawSize || !sawEncrypted {
			t.Errorf("backup details %q, want the plaintext size with its unit and Encrypted: yes", details)
		}
		b.do(chromedp.Click(`#type-tabs button[data-type="usage_logs"]`))

		// Chinese, kept across a reload, as is the sign-in (session storage).
		b.do(chromedp.Click("#lang"))
		if got := b.text("#create"); got != "开始导出" {
			t.Errorf("create button in Chinese: %q", got)
		}
		b.do(chromedp.Reload(), chromedp.WaitVisible("#page-exports"))
		// The job list loads after the page shows.
		b.waitFor(`document.querySelector('`+card+` .status') !== null`, 10*time.Second)
		if got, status := b.text("#create"), b.text(card+" .status"); got != "开始导出" || status != "已完成" {
			t.Errorf("after a reload: %q, status %q", got, status)
		}
		b.do(chromedp.Click("#lang"))

		// The audit trail shows what the page just did.
		b.do(chromedp.Click(`#nav a[data-page="audit"]`))
		b.waitFor(`[...document.querySelectorAll('#audit .audit-entry .title')].some(e => e.textContent === 'export.download_link')`, 10*time.Second)
		// A backup schedule: the API's words by the field at fault, then the schedule listed.
		b.do(chromedp.Click(`#nav a[data-page="schedules"]`), chromedp.WaitVisible("#schedule-form"),
			chromedp.SetValue("#sc-name", "nightly"), chromedp.SetValue("#sc-cron", "0 3 * * *"),
			chromedp.SetValue("#sc-retention-keep_last", "0"), chromedp.Click(`#schedule-form button[type="submit"]`))
		b.waitFor(`!document.querySelector('[data-field="retention.keep_last"] .field-error').hidden`, 10*time.Second)
		if got := b.text(`[data-field="retention.keep_last"] .field-error`); !strings.HasPrefix(got, "must be from 1 to ") {
			t.Errorf("keep_last error %q", got)
		}
		b.do(chromedp.SetValue("#sc-retention-keep_last", "7"), chromedp.Click(`#schedule-form button[type="submit"]`))
		b.waitFor(`[...document.querySelectorAll('#schedules .schedule .title')].some(e => e.textContent === 'nightly')`, 10*time.Second)

		b.do(chromedp.Click(`#nav a[data-page="webhooks"]`), chromedp.WaitVisible("#webhook-form"))
		// The page's webhook form makes an endpoint and shows its secret once.
		b.do(chromedp.SetValue("#wh-url", "http://127.0.0.1:9/hubexport-hook"), chromedp.SetValue("#wh-desc", "from the page"),
			chromedp.Click(`#webhook-form button[type=submit]`))
		b.waitFor(`document.querySelector('#webhook-form .secret-value, .secret-value') !== null`, 10*time.Second)
		var hooks struct {
			Data []struct {
				URL, Description string
			} `json:"data"`
		}
		s.do("GET", "/api/v1/webhooks", adminToken, nil).json(t, &hooks)
		if len(hooks.Data) != 1 || hooks.Data[0].URL != "http://127.0.0.1:9/hubexport-hook" || hooks.Data[0].Description != "from the page" {
			t.Errorf("webhooks after the page's form: %+v", hooks.Data)
		}
		b.do(chromedp.Click(`#nav a[data-page="exports"]`), chromedp.WaitVisible("#page-exports"))

		b.do(chromedp.Click("#signout"), chromedp.WaitVisible("#token"))
		if tok := eval[string](b, `String(sessionStorage.getItem('hubexport.token'))`); tok != "null" {
			t.Errorf("token kept after sign-out: %q", tok)
		}
	})

	t.Run("user on a phone", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(375, 812))
		b.signIn(s.base, seed.UserKey)
		if who := b.text("#whoami"); !strings.Contains(who, "alice") || strings.Contains(who, "admin") {
			t.Errorf("whoami %q", who)
		}
		if pages := eval[[]string](b, `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`); !slices.Equal(pages, []string{"exports", "schedules"}) {
			t.Errorf("a user's pages %q", pages)
		}
		if types := eval[[]string](b, `[...document.querySelectorAll('#type-tabs button')].map(b => b.dataset.type)`); !slices.Equal(types, []string{"usage_logs"}) {
			t.Errorf("user's export types %q", types)
		}
		if n := eval[int](b, `document.querySelectorAll('[name=user_id], [name=provider_id]').length`); n != 0 {
			t.Errorf("a user sees %d admin selectors", n)
		}
		// Their own keys only, by name.
		b.waitFor(`document.querySelectorAll('[name=key_id] option').length > 1`, 10*time.Second)
		if keys := eval[[]string](b, `[...document.querySelectorAll('[name=key_id] option')].map(o => o.value)`); !slices.Equal(keys, []string{"", "2", "3", "4", "5"}) {
			t.Errorf("user's key choices %q", keys)
		}
		// An admin page asked for by its address is not shown.
		b.do(chromedp.Navigate(s.base+"/#audit"), chromedp.WaitVisible("#page-exports"))
		if eval[bool](b, `!document.getElementById('page-audit').hidden || document.getElementById('page-audit').childElementCount > 0`) {
			t.Error("a user sees the audit page")
		}
		// Nothing wider than the phone.
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
			t.Errorf("page is %d px wide on a 375 px screen", w)
		}

		// The API's words for bad input, on the form and by the field.
		b.do(chromedp.SetValue("#f-status_code", "999"), chromedp.Click("#create"))
		b.waitFor(`!document.getElementById('create-error').hidden`, 10*time.Second)
		if got := b.text("#create-error"); got != "params.status_code: must be an HTTP status code between 100 and 599, not 999" {
			t.Errorf("create error %q", got)
		}
		if got := b.text(`[data-field="status_code"] .field-error`); got != "must be an HTTP status code between 100 and 599, not 999" {
			t.Errorf("field error %q", got)
		}
		// The user's job list holds none of the admin's jobs.
		if n := eval[int](b, `document.querySelectorAll('#jobs li.job').length`); n != 0 {
			t.Errorf("user sees %d jobs", n)
		}

		// A monthly workbook of their usage, scheduled from the page; the
		// admin's backup schedule is not theirs to see.
		b.do(chromedp.Click(`#nav a[data-page="schedules"]`), chromedp.WaitVisible("#schedule-form"))
		if types := eval[[]string](b, `[...document.querySelectorAll('#sc-job-type option')].map(o => o.value)`); !slices.Equal(types, []string{"usage_logs"}) {
			t.Errorf("user's schedule types %q", types)
		}
		if eval[bool](b, `!document.querySelector('[data-field="mode"]').hidden`) {
			t.Error("a user's usage schedule shows the backup mode")
		}
		b.do(chromedp.SetValue("#sc-name", "monthly"), chromedp.SetValue("#sc-cron", "0 1 1 * *"), chromedp.SetValue("#sc-timezone", "Asia/Shanghai"),
			chromedp.SetValue("#sc-job-format", "xlsx"), chromedp.SetValue("#sc-window", "previous_month"),
			chromedp.Click(`#schedule-form button[type="submit"]`))
		b.waitFor(`[...document.querySelectorAll('#schedules .schedule .title')].some(e => e.textContent === 'monthly')`, 10*time.Second)
		if titles := eval[[]string](b, `[...document.querySelectorAll('#schedules .schedule .title')].map(e => e.textContent)`); !slices.Equal(titles, []string{"monthly"}) {
			t.Errorf("user's schedules %q", titles)
		}
		if meta := b.text(`#schedules .schedule .meta`); !strings.Contains(meta, "usage_logs xlsx") || !strings.Contains(meta, "previous month") {
			t.Errorf("user's schedule reads %q", meta)
		}
	})
}
