package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

// FuzzDecodeBody feeds request bodies, with a Content-Type, to the one
// body decoder every POST and PATCH uses. It either refuses them with an
// error the API answers 400 or 413, naming one field for a 400, or decodes
// a request that encodes and decodes back to itself.
func FuzzDecodeBody(f *testing.F) {
	releaseMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/exports", bytes.NewReader(body))
		if contentType != "" {
			c.Request.Header["Content-Type"] = []string{contentType}
		}
		var req export.CreateRequest
		err := readBody(c, &req)
		if err != nil {
			var e *export.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *export.Error: the API would answer 500", err, err)
			}
			switch e.Kind {
			case export.KindTooLarge:
				if len(body) <= maxBodyBytes {
					t.Fatalf("a %d-byte body is refused as too large", len(body))
				}
			case export.KindInvalid:
				if len(e.Fields) != 1 || e.Message == "" {
					t.Fatalf("error %v names fields %v, want one", err, e.Fields)
				}
			default:
				t.Fatalf("error %v has kind %d, want invalid or too large", err, e.Kind)
			}
			return
		}
		if len(body) > maxBodyBytes {
			t.Fatalf("a %d-byte body was read", len(body))
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("decoded request %+v does not encode: %v", req, err)
		}
		var again export.CreateRequest
		if err := export.DecodeStrict(b, &again, ""); err != nil {
			t.Fatalf("re-encoded request %s is refused: %v", b, err)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
			t.Fatalf("request does not round-trip:\n first %s\nsecond %s", b, b2)
		}
	})
}

// FuzzCreateExport sends request bodies to POST /api/v1/exports, as the
// admin and as a user, with every export type registered. Whatever the
// body, the answer is one the API documents, never a 500: 202 with a job
// whose stored params are normalised and storable, or an error with its
// code (a 400 naming one field).
func FuzzCreateExport(f *testing.F) {
	b := setup(f, func(h *handler) {
		h.svc.Registry = export.NewRegistry(export.UsageLogSpec(), export.ProbeLogSpec(), export.SessionRequestSpec(),
			export.BackupSpec(time.UTC, export.BackupEncryption{}), export.RestoreSpec(nil))
		h.svc.MaxActive = 1 << 30
		h.svc.Store = fuzzStore{h.svc.Store.(*fakeStore)}
	})
	f.Fuzz(func(t *testing.T, admin bool, body []byte) {
		token := aliceToken
		if admin {
			token = adminToken
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/exports", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		b.h.ServeHTTP(w, req)
		// Forget the jobs: a long fuzzing session must not grow the store.
		b.store.mu.Lock()
		clear(b.store.jobs)
		b.store.mu.Unlock()

		switch w.Code {
		case http.StatusAccepted:
			var j export.Job
			if err := json.Unmarshal(w.Body.Bytes(), &j); err != nil {
				t.Fatalf("202 with body %q: %v", w.Body, err)
			}
			if !admin && j.UserID != alice.UserID {
				t.Fatalf("a user's job belongs to user %d", j.UserID)
			}
			if bytes.Contains(j.Params, []byte(`\u0000`)) {
				t.Fatalf("accepted params %s hold a NUL character, which PostgreSQL cannot store", j.Params)
			}
		case http.StatusBadRequest:
			e := decodeAPIError(t, w)
			if len(e.Error.Fields) != 1 {
				t.Fatalf("400 names fields %v, want one: %s", e.Error.Fields, w.Body)
			}
		case http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			decodeAPIError(t, w)
		default:
			t.Fatalf("body %q as admin=%v: status %d: %s", body, admin, w.Code, w.Body)
		}
	})
}

func decodeAPIError(t *testing.T, w *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d with error body %q", w.Code, w.Body)
	}
	if strings.Contains(e.Error.Message, "internal error") {
		t.Fatalf("status %d says %q", w.Code, e.Error.Message)
	}
	return e
}

// fuzzStore is the fake store without its planted failures, which a
// restore's backup_job_id could otherwise reach.
type fuzzStore struct{ *fakeStore }

func (s fuzzStore) Job(ctx context.Context, id string) (*export.Job, error) {
	if id == panicJobID || id == brokenJobID {
		return nil, export.ErrNotFound
	}
	return s.fakeStore.Job(ctx, id)
}
