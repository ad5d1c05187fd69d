package storage

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/testenv"
)

func get(t *testing.T, method, link string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxTimeout(t, 30*time.Second), method, link, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// errorCode returns the code of a JSON error body, or "" if the body is not one.
func errorCode(body []byte) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// put commits data at key.
func put(t *testing.T, st export.ObjectStore, key string, data []byte) {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	up, err := st.Create(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	writeChunked(t, up, data)
	if err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// tamper changes one query parameter of link, or its path when param is "".
func tamper(t *testing.T, link, param, value string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if param == "" {
		u.Path = value
		u.RawPath = ""
		return u.String()
	}
	q := u.Query()
	q.Set(param, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestDownloadURL(t *testing.T) {
	t.Parallel()
	const (
		key      = "exports/2026/01/exp_01J/usage-logs-20260129-103000.csv"
		filename = "用量 usage-logs-20260129.csv"
	)
	data := testData(6<<20+5, 9)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, time.Minute)
			st := b.open(t)
			put(t, st, key, data)
			put(t, st, "exports/2026/01/exp_01J/other.csv", []byte("other"))
			link, err := st.DownloadURL(ctx, key, filename, time.Now().Add(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}

			resp, body := get(t, http.MethodGet, link, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %s %s", resp.Status, body)
			}
			mustEqualBytes(t, body, data)
			if got, want := resp.Header.Get("Content-Disposition"), ContentDisposition(filename); got != want {
				t.Errorf("Content-Disposition %q; want %q", got, want)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "private, no-store" {
				t.Errorf("Cache-Control %q", got)
			}

			resp, body = get(t, http.MethodGet, link, map[string]string{"Range": "bytes=100-199"})
			if resp.StatusCode != http.StatusPartialContent || string(body) != string(data[100:200]) {
				t.Errorf("Range GET: %s, %d bytes", resp.Status, len(body))
			}

			refused := map[string]string{
				"tampered signature": tamperSignature(t, link),
				"other key":          tamper(t, link, "", strings.Replace(mustURL(t, link).Path, "usage-logs-20260129-103000.csv", "other.csv", 1)),
				"other filename":     tamper(t, link, filenameParam(b.name), "evil.exe"),
			}
			for name, bad := range refused {
				resp, body := get(t, http.MethodGet, bad, nil)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %s %s; want 403", name, resp.Status, body)
				}
				if b.name == "local" && errorCode(body) != "invalid_signature" {
					t.Errorf("%s: body %s; want code invalid_signature", name, body)
				}
			}

			if b.name == "local" {
				// Stretching the expiry breaks the signature too.
				resp, body := get(t, http.MethodGet, tamper(t, link, "expires", "9999999999"), nil)
				if resp.StatusCode != http.StatusForbidden || errorCode(body) != "invalid_signature" {
					t.Errorf("extended expiry: %s %s", resp.Status, body)
				}
				resp, body = get(t, http.MethodHead, link, nil)
				if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) || len(body) != 0 {
					t.Errorf("HEAD: %s, length %d, body %d bytes", resp.Status, resp.ContentLength, len(body))
				}
				resp, body = get(t, http.MethodPost, link, nil)
				if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(body) != "method_not_allowed" {
					t.Errorf("POST: %s %s", resp.Status, body)
				}
				if err := st.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				resp, body = get(t, http.MethodGet, link, nil)
				if resp.StatusCode != http.StatusNotFound || errorCode(body) != "not_found" {
					t.Errorf("deleted file: %s %s; want 404 not_found", resp.Status, body)
				}
			}
		})
	}
}

func TestDownloadURLExpires(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, time.Minute)
			st := b.open(t)
			put(t, st, "backups/b.dump", []byte("dump"))
			link, err := st.DownloadURL(ctx, "backups/b.dump", "b.dump", time.Now().Add(1500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := get(t, http.MethodGet, link, nil); resp.StatusCode != http.StatusOK || string(body) != "dump" {
				t.Fatalf("fresh link: %s %q", resp.Status, body)
			}
			time.Sleep(3 * time.Second)
			resp, body := get(t, http.MethodGet, link, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("expired link: %s %s; want 403", resp.Status, body)
			}
			if b.name == "local" && errorCode(body) != "link_expired" {
				t.Errorf("expired link: body %s; want code link_expired", body)
			}
		})
	}
}

// TestS3PublicEndpoint signs links for the public endpoint while the store talks to another one.
func TestS3PublicEndpoint(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	var public string
	e := newS3(t, func(c *Config) {
		public = c.S3.Endpoint
		c.S3.Endpoint = testenv.NewProxy(t, strings.TrimPrefix(public, "http://")).URL("http")
		c.S3.PublicEndpoint = public
	})
	put(t, e, "a/b.txt", []byte("hello"))
	link, err := e.DownloadURL(ctx, "a/b.txt", "b.txt", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, public+"/") {
		t.Fatalf("link %s not signed for the public endpoint %s", link, public)
	}
	resp, body := get(t, http.MethodGet, link, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Fatalf("GET: %s %q", resp.Status, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
}

func mustURL(t *testing.T, link string) *url.URL {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func filenameParam(backend string) string {
	if backend == "s3" {
		return "response-content-disposition"
	}
	return "filename"
}

// tamperSignature flips the last hex digit of the signature.
func tamperSignature(t *testing.T, link string) string {
	t.Helper()
	u := mustURL(t, link)
	param := "signature"
	if u.Query().Has("X-Amz-Signature") {
		param = "X-Amz-Signature"
	}
	sig := u.Query().Get(param)
	last := "0"
	if strings.HasSuffix(sig, "0") {
		last = "1"
	}
	return tamper(t, link, param, sig[:len(sig)-1]+last)
}

// TestLocalLinkEscaping serves a key that needs escaping, through the handler mounted both with
// its full path and behind http.StripPrefix.
func TestLocalLinkEscaping(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	l := newLocal(t)
	const key = "exports/2026/01/exp 1/a+b%c 用量?.dump"
	put(t, l, key, []byte("dump bytes"))
	link, err := l.DownloadURL(ctx, key, "a+b%c 用量?.dump", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, http.MethodGet, link, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "dump bytes" {
		t.Fatalf("GET %s: %s %q", link, resp.Status, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q", got)
	}

	stripped := httptest.NewServer(http.StripPrefix(FilesPath, l.Handler()))
	defer stripped.Close()
	u := mustURL(t, link)
	resp, body = get(t, http.MethodGet, stripped.URL+u.RequestURI(), nil)
	if resp.StatusCode != http.StatusOK || string(body) != "dump bytes" {
		t.Fatalf("behind StripPrefix: %s %q", resp.Status, body)
	}
}
