package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func TestRestoreUpload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "POST", "/api/v1/restores/uploads", adminToken, "")
	got := wantJSON[export.UploadTicket](t, w, http.StatusCreated)
	if !export.ValidUploadID(got.UploadID) || got.Method != "PUT" ||
		!strings.Contains(got.URL, export.UploadKey(got.UploadID)) || time.Until(got.ExpiresAt) < 50*time.Minute {
		t.Fatalf("ticket %+v", got)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	again := wantJSON[export.UploadTicket](t, b.do(t, "POST", "/api/v1/restores/uploads", adminToken, ""), http.StatusCreated)
	if again.UploadID == got.UploadID {
		t.Error("two uploads got the same id")
	}

	wantError(t, b.do(t, "POST", "/api/v1/restores/uploads", aliceToken, ""), http.StatusForbidden, "admin_only")
	wantError(t, b.do(t, "POST", "/api/v1/restores/uploads", "", ""), http.StatusUnauthorized, "unauthenticated")

	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	var ok, refused int
	for _, e := range b.store.audit {
		if e.Action != "restore.upload_url" {
			continue
		}
		switch {
		case e.Outcome == "ok" && strings.HasPrefix(e.Target, "upload:upl_"):
			ok++
		case e.Outcome == "error:admin_only":
			refused++
		}
	}
	if ok != 2 || refused != 1 {
		t.Errorf("audit: %d issued, %d refused; want 2 and 1 (%+v)", ok, refused, b.store.audit)
	}
}
