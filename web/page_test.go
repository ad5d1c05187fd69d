package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestPageIsServedWithoutToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "GET", "/", "", "")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(w.Body.String(), `<script type="module" src="/ui/app.js"></script>`) {
		t.Errorf("the page does not load its script:\n%s", w.Body)
	}

	w = b.do(t, "GET", "/ui/app.js", "", "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || w.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /ui/app.js: %d %q", w.Code, w.Header())
	}
	etag := w.Header().Get("ETag")
	if w := b.do(t, "GET", "/ui/app.js", "", "", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, w.Code)
	}
	for _, path := range []string{"/ui/", "/ui/nope.js", "/ui/../web.go", "/index.html"} {
		wantError(t, b.do(t, "GET", path, "", ""), http.StatusNotFound, "route_not_found")
	}
}

// The page must work under its CSP: no inline script, style or event
// handler, nothing from another origin, and every file it names embedded.
func TestPageFilesAreSelfContained(t *testing.T) {
	t.Parallel()
	html := string(pageAssets["index.html"].body)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s+[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("index.html has %q, which the CSP forbids or which leaves the origin", m)
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="/ui/([^"]+)"`).FindAllStringSubmatch(html, -1)
	imports := regexp.MustCompile(`from '\./([^']+)'`)
	remote := regexp.MustCompile(`(?:from|import\(|fetch\()\s*['"](?:https?:)?//`)
	for name, a := range pageAssets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		js := string(a.body)
		refs = append(refs, imports.FindAllStringSubmatch(js, -1)...)
		if m := remote.FindString(js); m != "" {
			t.Errorf("%s loads from another origin: %q", name, m)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
	if len(refs) < 5 {
		t.Fatalf("found only %d references to the page's files", len(refs))
	}
	for _, r := range refs {
		if _, ok := pageAssets[r[1]]; !ok {
			t.Errorf("%s is referenced but not embedded under web/ui", r[1])
		}
	}
}
