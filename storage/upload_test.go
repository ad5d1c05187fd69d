package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func putLink(t *testing.T, link string, data []byte) (*http.Response, []byte) {
	t.Helper()
	return putSigned(t, export.SignedUpload{URL: link}, data)
}

// putSigned PUTs data to an upload link with the headers it asks for.
func putSigned(t *testing.T, link export.SignedUpload, data []byte) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := tryPut(t, link, data)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// putAnswered is putSigned that tries again when the connection was reset before an answer
// came: a refusal from the headers (412) may race with the body still being sent.
func putAnswered(t *testing.T, link export.SignedUpload, data []byte) (*http.Response, []byte) {
	t.Helper()
	for range 10 {
		resp, body, err := tryPut(t, link, data)
		if err == nil {
			return resp, body
		}
		t.Logf("PUT not answered: %v", err)
	}
	t.Fatal("no answer to 10 PUTs")
	return nil, nil
}

// expectingClient waits up to 30 s for a server's "100 Continue" or final answer before it
// sends a body (the default transport waits one second, which a loaded machine or a race-checked
// run can exceed; then the body is sent into a server that has refused it and closed).
var expectingClient = func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 30 * time.Second
	return &http.Client{Transport: tr}
}()

// tryPut is putSigned that returns a transport error: a server that refuses a request from its
// headers may close the connection while a large body is still being sent.
func tryPut(t *testing.T, link export.SignedUpload, data []byte) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxTimeout(t, time.Minute), http.MethodPut, link.URL, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range link.Headers {
		req.Header.Set(k, v)
	}
	// As curl does for large bodies: a server that refuses from the headers answers before the
	// body is sent.
	req.Header.Set("Expect", "100-continue")
	resp, err := expectingClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp, body.Bytes(), nil
}

func uploadSpec(key string, data []byte, ttl time.Duration) export.UploadSpec {
	sum := sha256.Sum256(data)
	return export.UploadSpec{Key: key, SizeBytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Expires: time.Now().Add(ttl)}
}

// An upload link takes one PUT of the declared file; altered links, other sizes and other
// contents are refused and leave nothing; a second PUT is refused and leaves the first file.
func TestUploadURL(t *testing.T) {
	t.Parallel()
	const key = "uploads/upl_0123456789abcdef0123456789abcdef.dump"
	data := testData(6<<20+11, 3)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, time.Minute)
			st := b.open(t)
			signed, err := st.UploadURL(ctx, uploadSpec(key, data, 10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			link := signed.URL
			if b.name == "s3" && (signed.Headers["X-Amz-Checksum-Sha256"] == "" || signed.Headers["If-None-Match"] != "*") {
				t.Fatalf("S3 upload headers %v; want x-amz-checksum-sha256 and If-None-Match", signed.Headers)
			}
			with := func(url string) export.SignedUpload { return export.SignedUpload{URL: url, Headers: signed.Headers} }
			refused := map[string]export.SignedUpload{
				"tampered signature": with(tamperSignature(t, link)),
				"other key":          with(tamper(t, link, "", strings.Replace(mustURL(t, link).Path, "upl_0123", "upl_9123", 1))),
			}
			if b.name == "local" {
				refused["later expiry"] = with(tamper(t, link, "expires", "9999999999"))
				refused["no signature"] = with(tamper(t, link, "signature", ""))
				refused["other size"] = with(tamper(t, link, "size", "10"))
				refused["other digest"] = with(tamper(t, link, "sha256", strings.Repeat("0", 64)))
			} else {
				refused["no checksum header"] = export.SignedUpload{URL: link, Headers: map[string]string{"If-None-Match": "*"}}
			}
			for name, bad := range refused {
				resp, body := putSigned(t, bad, []byte("PGDMP evil"))
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %s %s; want 403", name, resp.Status, body)
				}
			}
			// The right link with a body that is not the declared one.
			other := bytes.Clone(data)
			other[len(other)/2] ^= 1
			for name, body := range map[string][]byte{
				"bigger body":  append(bytes.Clone(data), 'x'),
				"shorter body": data[:len(data)-1],
				"other bytes":  other,
			} {
				resp, rb, err := tryPut(t, signed, body)
				switch {
				case err != nil && b.name == "s3": // refused before the body was read
				case err != nil:
					t.Errorf("%s: %v", name, err)
				case resp.StatusCode < 400 || resp.StatusCode >= 500:
					t.Errorf("%s: %s %s; want refused", name, resp.Status, rb)
				case b.name == "local" && errorCode(rb) == "":
					t.Errorf("%s: %s %s; want an error code", name, resp.Status, rb)
				}
			}
			if ok, err := st.Exists(ctx, key); err != nil || ok {
				t.Fatalf("after refused uploads: exists %v, %v", ok, err)
			}

			resp, body := putSigned(t, signed, data)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: %s %s", resp.Status, body)
			}
			mustEqualBytes(t, readAll(t, st, key), data)

			// The link is spent: the same bytes again are refused too. An S3 server refuses from
			// the headers and closes; while a large body is still being written the client may
			// meet the reset instead of the answer, so the answer is read on a small upload.
			want := map[string]int{"local": http.StatusConflict, "s3": http.StatusPreconditionFailed}[b.name]
			small, smallKey := testData(16<<10, 7), key+".small"
			smallLink, err := st.UploadURL(ctx, uploadSpec(smallKey, small, 10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := putSigned(t, smallLink, small); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT of the small file: %s %s", resp.Status, body)
			}
			resp, body = putAnswered(t, smallLink, small)
			if resp.StatusCode != want || (b.name == "local" && errorCode(body) != "upload_link_used") {
				t.Errorf("second PUT: %s %s; want %d", resp.Status, body, want)
			}
			mustEqualBytes(t, readAll(t, st, smallKey), small)
			if resp, body, err := tryPut(t, signed, data); err == nil && resp.StatusCode != want {
				t.Errorf("second PUT of the large file: %s %s; want %d", resp.Status, body, want)
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
			if b.name == "local" {
				if temps := tempFiles(t, st.(*Local).Root()); len(temps) != 0 {
					t.Errorf("temp files left: %v", temps)
				}
			}
		})
	}
}

// Two PUTs racing on one local link: one stores its file, the other gets 409 upload_link_used.
func TestLocalUploadRace(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	const key = "uploads/upl_00000000000000000000000000000abc.dump"
	data := testData(8<<20, 5)
	signed, err := l.UploadURL(context.Background(), uploadSpec(key, data, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 4)
	for range 4 {
		go func() {
			resp, _, err := tryPut(t, signed, data)
			if err != nil {
				t.Errorf("PUT: %v", err)
				codes <- -1
				return
			}
			codes <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for range 4 {
		got[<-codes]++
	}
	if got[http.StatusOK] != 1 || got[http.StatusConflict] != 3 {
		t.Errorf("statuses %v; want one 200 and three 409", got)
	}
	mustEqualBytes(t, readAll(t, l, key), data)
}

func TestLocalUploadURLLimits(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	ctx := context.Background()
	body := []byte("PGDMP")
	if _, err := l.UploadURL(ctx, uploadSpec("exports/2026/01/exp_1/x.csv", body, time.Minute)); err == nil {
		t.Error("an upload link outside uploads/ was signed")
	}
	if _, err := l.UploadURL(ctx, uploadSpec("uploads/x.dump", body, -time.Minute)); err == nil {
		t.Error("an upload link that expired was signed")
	}
	if _, err := l.UploadURL(ctx, uploadSpec("uploads/x.dump", nil, time.Minute)); err == nil {
		t.Error("an upload link of 0 bytes was signed")
	}
	signed, err := l.UploadURL(ctx, uploadSpec("uploads/late.dump", body, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	resp, rb := putSigned(t, signed, body)
	if resp.StatusCode != http.StatusForbidden || errorCode(rb) != "link_expired" {
		t.Errorf("expired upload link: %s %s", resp.Status, rb)
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
