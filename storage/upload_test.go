package storage

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func putLink(t *testing.T, link string, data []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxTimeout(t, time.Minute), http.MethodPut, link, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp, body.Bytes()
}

// An upload link takes a PUT of the whole file; altered links are refused and leave nothing.
func TestUploadURL(t *testing.T) {
	t.Parallel()
	const key = "uploads/upl_0123456789abcdef0123456789abcdef.dump"
	data := testData(6<<20+11, 3)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, time.Minute)
			st := b.open(t)
			link, err := st.UploadURL(ctx, key, time.Now().Add(10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			refused := map[string]string{
				"tampered signature": tamperSignature(t, link),
				"other key":          tamper(t, link, "", strings.Replace(mustURL(t, link).Path, "upl_0123", "upl_9123", 1)),
			}
			if b.name == "local" {
				refused["later expiry"] = tamper(t, link, "expires", "9999999999")
				refused["no signature"] = tamper(t, link, "signature", "")
			}
			for name, bad := range refused {
				resp, body := putLink(t, bad, []byte("PGDMP evil"))
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %s %s; want 403", name, resp.Status, body)
				}
			}
			if ok, err := st.Exists(ctx, key); err != nil || ok {
				t.Fatalf("after refused uploads: exists %v, %v", ok, err)
			}

			resp, body := putLink(t, link, data)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: %s %s", resp.Status, body)
			}
			mustEqualBytes(t, readAll(t, st, key), data)

			// A download link of the uploaded file does not take a PUT.
			dl, err := st.DownloadURL(ctx, key, "x.dump", time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := putLink(t, dl, []byte("overwrite")); resp.StatusCode != http.StatusForbidden {
				t.Errorf("PUT to a download link: %s %s; want 403", resp.Status, body)
			}
			mustEqualBytes(t, readAll(t, st, key), data)
		})
	}
}

func TestLocalUploadURLLimits(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	ctx := context.Background()
	if _, err := l.UploadURL(ctx, "exports/2026/01/exp_1/x.csv", time.Now().Add(time.Minute)); err == nil {
		t.Error("an upload link outside uploads/ was signed")
	}
	if _, err := l.UploadURL(ctx, "uploads/x.dump", time.Now().Add(-time.Minute)); err == nil {
		t.Error("an upload link that expired was signed")
	}
	link, err := l.UploadURL(ctx, "uploads/late.dump", time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	resp, body := putLink(t, link, []byte("PGDMP"))
	if resp.StatusCode != http.StatusForbidden || errorCode(body) != "link_expired" {
		t.Errorf("expired upload link: %s %s", resp.Status, body)
	}
	if ok, _ := l.Exists(ctx, "uploads/late.dump"); ok {
		t.Error("an expired link stored its file")
	}
	if temps := tempFiles(t, l.Root()); len(temps) != 0 {
		t.Errorf("temp files left: %v", temps)
	}
}

func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := finalName(d.Name()); ok && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// A backup's unfinished write is a temp file beside its key (".<name>.tmp-<hex>" in the job's
// folder): aborting the job's prefix, or its exact key, removes it and nothing of other jobs.
func TestLocalAbortPendingBackupKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, prefix := range []string{"backups/exp_A/", "backups/exp_A/backup_2026-01-29T12-00-00.dump"} {
		l := newLocal(t)
		mine, err := l.Create(ctx, "backups/exp_A/backup_2026-01-29T12-00-00.dump", "")
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := l.Create(ctx, "backups/exp_AB/backup_2026-01-29T12-00-00.dump", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []interface{ Write([]byte) (int, error) }{mine, theirs} {
			if _, err := u.Write(testData(300<<10, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if temps := tempFiles(t, l.Root()); len(temps) != 2 {
			t.Fatalf("temp files %v, want 2", temps)
		}
		n, err := l.AbortPending(ctx, prefix)
		if err != nil || n != 1 {
			t.Fatalf("AbortPending(%q) = %d, %v; want 1", prefix, n, err)
		}
		temps := tempFiles(t, l.Root())
		if len(temps) != 1 || !strings.HasPrefix(temps[0], "backups/exp_AB/.backup_") {
			t.Fatalf("AbortPending(%q) left %v; want only the other job's temp file", prefix, temps)
		}
		if err := theirs.Commit(ctx); err != nil {
			t.Fatalf("the other job's upload was broken: %v", err)
		}
		_ = mine.Abort(ctx)
	}
}
