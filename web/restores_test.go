package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

const testSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestRestoreUpload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"size_bytes": 1234, "sha256": "` + strings.ToUpper(testSHA) + `"}`
	w := b.do(t, "POST", "/api/v1/restores/uploads", adminToken, body)
	got := wantJSON[export.UploadTicket](t, w, http.StatusCreated)
	if !export.ValidUploadID(got.UploadID) || got.Method != "PUT" ||
		!strings.Contains(got.URL, export.UploadKey(got.UploadID)) || time.Until(got.ExpiresAt) < 50*time.Minute ||
		got.SizeBytes != 1234 || got.SHA256 != testSHA || got.Headers["X-Fake-Sha256"] != testSHA || got.MaxBytes != export.DefaultMaxUploadBytes {
		t.Fatalf("ticket %+v", got)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	rec, err := b.store.Upload(t.Context(), got.UploadID)
	if err != nil || rec.SizeBytes != 1234 || rec.SHA256 != testSHA || rec.Actor == "" || !rec.ExpiresAt.Equal(got.ExpiresAt) {
		t.Fatalf("record %+v, %v", rec, err)
	}
	again := wantJSON[export.UploadTicket](t, b.do(t, "POST", "/api/v1/restores/uploads", adminToken, body), http.StatusCreated)
	if again.UploadID == got.UploadID {
		t.Error("two uploads got the same id")
	}

	wantError(t, b.do(t, "POST", "/api/v1/restores/uploads", aliceToken, body), http.StatusForbidden, "admin_only")
	wantError(t, b.do(t, "POST", "/api/v1/restores/uploads", "", body), http.StatusUnauthorized, "unauthenticated")

	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	var ok, refused int
	for _, e := range b.store.audit {
		if e.Action != "restore.upload_url" {
			continue
		}
		switch {
		case e.Outcome == "ok" && strings.HasPrefix(e.Target, "upload:upl_") && e.Params["sha256"] == testSHA:
			ok++
		case e.Outcome == "error:admin_only":
			refused++
		}
	}
	if ok != 2 || refused != 1 {
		t.Errorf("audit: %d issued, %d refused; want 2 and 1 (%+v)", ok, refused, b.store.audit)
	}
}

// The size and digest are required and checked; a size over the limit is
// 413 naming RESTORE_UPLOAD_MAX_BYTES.
func TestRestoreUploadBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.MaxUploadBytes = 1 << 20
	for name, tc := range map[string]struct {
		body  string
		field string
	}{
		"no body":        {"", "size_bytes"},
		"no size":        {`{"sha256": "` + testSHA + `"}`, "size_bytes"},
		"zero size":      {`{"size_bytes": 0, "sha256": "` + testSHA + `"}`, "size_bytes"},
		"size as string": {`{"size_bytes": "12", "sha256": "` + testSHA + `"}`, "size_bytes"},
		"no digest":      {`{"size_bytes": 12}`, "sha256"},
		"short digest":   {`{"size_bytes": 12, "sha256": "abc"}`, "sha256"},
		"not hex":        {`{"size_bytes": 12, "sha256": "` + strings.Repeat("z", 64) + `"}`, "sha256"},
		"unknown field":  {`{"size_bytes": 12, "sha256": "` + testSHA + `", "name": "x"}`, "name"},
	} {
		w := b.do(t, "POST", "/api/v1/restores/uploads", adminToken, tc.body)
		e := wantError(t, w, http.StatusBadRequest, "invalid_request")
		if e.Error.Fields[tc.field] == "" {
			t.Errorf("%s: %s; want the field %s named", name, w.Body, tc.field)
		}
	}
	w := b.do(t, "POST", "/api/v1/restores/uploads", adminToken, fmt.Sprintf(`{"size_bytes": %d, "sha256": "%s"}`, 1<<20+1, testSHA))
	e := wantError(t, w, http.StatusRequestEntityTooLarge, "upload_too_large")
	if !strings.Contains(e.Error.Message, "RESTORE_UPLOAD_MAX_BYTES") || !strings.Contains(e.Error.Message, "1048576") {
		t.Errorf("too large: %s", w.Body)
	}
	if len(b.store.uploads) != 0 {
		t.Errorf("refused requests recorded uploads: %v", b.store.uploads)
	}
}
