package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hubexport/hubexport/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1000, testPartSize, testPartSize + 1, 20<<20 + 123}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			for i, size := range sizes {
				t.Run(fmt.Sprint(size), func(t *testing.T) {
					t.Parallel()
					ctx := ctxTimeout(t, time.Minute)
					key := fmt.Sprintf("exports/2026/01/exp_%d/usage-logs-%d.csv", i, size)
					data := testData(size, uint64(size))
					up, err := st.Create(ctx, key, "text/csv; charset=utf-8")
					if err != nil {
						t.Fatal(err)
					}
					writeChunked(t, up, data)
					if ok, err := st.Exists(ctx, key); err != nil || ok {
						t.Fatalf("before Commit: Exists = %v, %v; want false, nil", ok, err)
					}
					if _, err := st.Open(ctx, key); !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("before Commit: Open error = %v; want ErrNotFound", err)
					}
					if err := up.Commit(ctx); err != nil {
						t.Fatal(err)
					}
					if ok, err := st.Exists(ctx, key); err != nil || !ok {
						t.Fatalf("after Commit: Exists = %v, %v; want true, nil", ok, err)
					}
					mustEqualBytes(t, readAll(t, st, key), data)
					if err := up.Abort(ctx); err != nil {
						t.Fatalf("Abort after Commit: %v", err)
					}
					if ok, _ := st.Exists(ctx, key); !ok {
						t.Fatal("Abort after Commit removed the object")
					}
					if _, err := up.Write([]byte("x")); err == nil {
						t.Fatal("Write after Commit succeeded")
					}
					if err := st.Delete(ctx, key); err != nil {
						t.Fatal(err)
					}
					if err := st.Delete(ctx, key); err != nil {
						t.Fatalf("second Delete: %v", err)
					}
					if ok, err := st.Exists(ctx, key); err != nil || ok {
						t.Fatalf("after Delete: Exists = %v, %v; want false, nil", ok, err)
					}
				})
			}
		})
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		for _, size := range []int{1000, 12 << 20} {
			t.Run(fmt.Sprintf("%s/%d", b.name, size), func(t *testing.T) {
				t.Parallel()
				ctx := ctxTimeout(t, time.Minute)
				st := b.open(t)
				key := "backups/backup_20260129.dump"
				up, err := st.Create(ctx, key, "application/octet-stream")
				if err != nil {
					t.Fatal(err)
				}
				writeChunked(t, up, testData(size, 1))
				if e, ok := st.(*s3Env); ok && size > testPartSize {
					if got := e.pendingUploads(t); len(got) != 1 || got[0] != "tenant-a/"+key {
						t.Fatalf("while writing: multipart uploads %v; want one for tenant-a/%s", got, key)
					}
				}
				if err := up.Abort(ctx); err != nil {
					t.Fatal(err)
				}
				if err := up.Abort(ctx); err != nil {
					t.Fatalf("second Abort: %v", err)
				}
				if err := up.Commit(ctx); err == nil {
					t.Fatal("Commit after Abort succeeded")
				}
				if ok, err := st.Exists(ctx, key); err != nil || ok {
					t.Fatalf("Exists = %v, %v; want false, nil", ok, err)
				}
				switch st := st.(type) {
				case *s3Env:
					if got := st.pendingUploads(t); len(got) != 0 {
						t.Fatalf("multipart uploads left: %v", got)
					}
				case *Local:
					assertNoFiles(t, st.Root())
				}
			})
		}
	}
}

// assertNoFiles fails if any file (committed or temp) is below root.
func assertNoFiles(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return nil
	})
}

func TestS3PrefixAndContentType(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	e := newS3(t, func(c *Config) { c.URL += "/nested/" })
	for _, size := range []int{10, 6 << 20} {
		key := fmt.Sprintf("exports/2026/01/exp_1/probe-logs-%d.txt", size)
		up, err := e.Create(ctx, key, "text/plain; charset=utf-8")
		if err != nil {
			t.Fatal(err)
		}
		writeChunked(t, up, testData(size, 2))
		if err := up.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		out, err := e.raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &e.env.Bucket, Key: aws.String("tenant-a/nested/" + key)})
		if err != nil {
			t.Fatalf("object not at tenant-a/nested/%s: %v", key, err)
		}
		if got := aws.ToString(out.ContentType); got != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", got)
		}
		if aws.ToInt64(out.ContentLength) != int64(size) {
			t.Errorf("size %d, want %d", aws.ToInt64(out.ContentLength), size)
		}
	}
	if err := e.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestS3MemoryBound(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	e := newS3(t, func(c *Config) { c.S3.Concurrency = 3 })
	up, err := e.Create(ctx, "backups/big.dump", "")
	if err != nil {
		t.Fatal(err)
	}
	data := testData(41<<20, 3)
	writeChunked(t, up, data)
	u := up.(*s3Upload)
	if u.allocated > e.conc+1 {
		t.Errorf("allocated %d part buffers; want at most %d", u.allocated, e.conc+1)
	}
	if err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if u.lastPart != 9 {
		t.Errorf("%d parts; want 9", u.lastPart)
	}
	mustEqualBytes(t, readAll(t, e, "backups/big.dump"), data)
}

// TestS3ServerCut cuts the connection to the S3 server in the middle of an upload: Write or
// Commit must fail, promptly, and once the server is back AbortPending or Sweep must leave no
// multipart upload behind.
func TestS3ServerCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		failing string // "write" or "commit"
		cleanup func(ctx context.Context, e *s3Env) (int, error)
	}{
		{"commit fails, AbortPending", "commit", func(ctx context.Context, e *s3Env) (int, error) {
			return e.AbortPending(ctx, "exports/2026/01/exp_cut/")
		}},
		{"write fails, Sweep", "write", func(ctx context.Context, e *s3Env) (int, error) {
			return e.Sweep(ctx, time.Now().Add(time.Minute))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var proxy *testenv.Proxy
			e := newS3(t, func(c *Config) {
				proxy = testenv.NewProxy(t, strings.TrimPrefix(c.S3.Endpoint, "http://"))
				c.S3.Endpoint = proxy.URL("http")
				c.S3.Concurrency = 1
			})
			e.abortWait = 10 * time.Second
			ctx := ctxTimeout(t, 90*time.Second)
			key := "exports/2026/01/exp_cut/usage.csv"
			up, err := e.Create(ctx, key, "")
			if err != nil {
				t.Fatal(err)
			}
			writeChunked(t, up, testData(6<<20, 4)) // the multipart upload has started
			if got := e.pendingUploads(t); len(got) != 1 {
				t.Fatalf("multipart uploads before the cut: %v", got)
			}
			proxy.Cut()
			start := time.Now()
			chunk := testData(1<<20, 5)
			switch tc.failing {
			case "commit":
				err = up.Commit(ctx)
			case "write":
				for i := 0; err == nil && i < 200; i++ {
					_, err = up.Write(chunk)
				}
				if err == nil {
					t.Fatal("200 MiB written while the server was cut")
				}
			}
			if err == nil || ctx.Err() != nil {
				t.Fatalf("%s during the cut: err = %v, ctx = %v; want an error before the deadline", tc.failing, err, ctx.Err())
			}
			t.Logf("%s failed after %s: %v", tc.failing, time.Since(start).Round(time.Millisecond), err)
			if err := up.Commit(ctx); err == nil {
				t.Fatal("Commit after a failure succeeded")
			}
			proxy.Restore()
			if got := e.pendingUploads(t); len(got) != 1 {
				t.Fatalf("multipart uploads after the cut: %v; want the one whose abort could not reach the server", got)
			}
			n, err := tc.cleanup(ctx, e)
			if err != nil || n != 1 {
				t.Fatalf("cleanup = %d, %v; want 1, nil", n, err)
			}
			if got := e.pendingUploads(t); len(got) != 0 {
				t.Fatalf("multipart uploads left: %v", got)
			}
			if ok, _ := e.Exists(ctx, key); ok {
				t.Fatal("object visible after a failed upload")
			}
			if err := up.Abort(ctx); err != nil {
				t.Fatalf("Abort after cleanup: %v", err)
			}
		})
	}
}

// TestS3CancelAborts cancels the context an upload was created with: the next Write fails and
// the multipart upload is aborted without an explicit Abort.
func TestS3CancelAborts(t *testing.T) {
	t.Parallel()
	e := newS3(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := e.Create(ctx, "exports/x/cancel.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	writeChunked(t, up, testData(7<<20, 6))
	if got := e.pendingUploads(t); len(got) != 1 {
		t.Fatalf("multipart uploads while writing: %v", got)
	}
	cancel()
	if _, err := up.Write([]byte("more")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel: %v; want context.Canceled", err)
	}
	if got := e.pendingUploads(t); len(got) != 0 {
		t.Fatalf("multipart uploads left after a failed Write: %v", got)
	}
	if err := up.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestS3SweepAndAbortPending(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	e := newS3(t, nil)
	start := func(key string) *string {
		t.Helper()
		out, err := e.raw.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &e.env.Bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return out.UploadId
	}
	start("tenant-a/exports/2026/01/exp_A/old.csv")
	start("other-tenant/exports/old.csv") // outside the store's prefix
	busy := start("tenant-a/backups/long-running.dump")
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1100 * time.Millisecond)
	start("tenant-a/exports/2026/01/exp_B/new.csv")
	start("tenant-a/exports/2026/01/exp_AB/new.csv")
	// An old upload that is still receiving parts is not a leftover.
	if _, err := e.raw.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &e.env.Bucket, Key: aws.String("tenant-a/backups/long-running.dump"), UploadId: busy,
		PartNumber: aws.Int32(1), Body: strings.NewReader("part"),
	}); err != nil {
		t.Fatal(err)
	}

	if n, err := e.Sweep(ctx, cutoff); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 (only the old upload under the prefix)", n, err)
	}
	if n, err := e.AbortPending(ctx, "exports/2026/01/exp_B/"); err != nil || n != 1 {
		t.Fatalf("AbortPending(exp_B/) = %d, %v; want 1", n, err)
	}
	got := e.pendingUploads(t)
	want := []string{"other-tenant/exports/old.csv", "tenant-a/backups/long-running.dump", "tenant-a/exports/2026/01/exp_AB/new.csv"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("uploads left %v; want %v", got, want)
	}
}

func TestLocalSweepAndAbortPending(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	l := newLocal(t)
	pending := func(key string, age time.Duration) *localUpload {
		t.Helper()
		up, err := l.Create(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		u := up.(*localUpload)
		if _, err := u.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		if err := u.w.Flush(); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(u.f.Name(), old, old); err != nil {
			t.Fatal(err)
		}
		return u
	}
	commit := func(key string, age time.Duration) {
		t.Helper()
		up := pending(key, 0)
		if err := up.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(l.path(key), old, old); err != nil {
			t.Fatal(err)
		}
	}
	oldA := pending("exports/2026/01/exp_A/a.csv", 3*time.Hour)
	commit("exports/2026/01/exp_A/done.csv", 3*time.Hour)
	fresh := pending("exports/2026/01/exp_B/b.csv", 0)
	other := pending("exports/2026/01/exp_AB/c.csv", 0)
	otherB := pending("backups/x.dump", 0)

	if n, err := l.Sweep(ctx, time.Now().Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(oldA.f.Name()); !os.IsNotExist(err) {
		t.Fatalf("old temp file survived Sweep: %v", err)
	}
	if ok, _ := l.Exists(ctx, "exports/2026/01/exp_A/done.csv"); !ok {
		t.Fatal("Sweep removed a committed file")
	}
	if n, err := l.AbortPending(ctx, "exports/2026/01/exp_B/"); err != nil || n != 1 {
		t.Fatalf("AbortPending(exp_B/) = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(fresh.f.Name()); !os.IsNotExist(err) {
		t.Fatal("AbortPending left the temp file")
	}
	if _, err := os.Stat(filepath.Join(l.Root(), "exports/2026/01/exp_B")); !os.IsNotExist(err) {
		t.Error("AbortPending left the empty job directory")
	}
	if n, err := l.AbortPending(ctx, "exports/2026/01/nothing-here/"); err != nil || n != 0 {
		t.Fatalf("AbortPending(missing dir) = %d, %v; want 0, nil", n, err)
	}
	for _, u := range []*localUpload{other, otherB} {
		if err := u.Commit(ctx); err != nil {
			t.Fatalf("an unrelated pending upload was broken: %v", err)
		}
	}
	if err := fresh.Commit(ctx); err == nil {
		t.Fatal("Commit of an upload removed by AbortPending succeeded")
	}
	if ok, _ := l.Exists(ctx, "exports/2026/01/exp_B/b.csv"); ok {
		t.Fatal("aborted upload became visible")
	}
	if n, err := l.AbortPending(ctx, ""); err != nil || n != 0 {
		t.Fatalf("AbortPending(all) = %d, %v; want 0", n, err)
	}
}

func TestLocalDeletePrunesEmptyDirs(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	l := newLocal(t)
	for _, key := range []string{"exports/2026/01/exp_1/a.csv", "exports/2026/01/exp_2/b.csv"} {
		up, _ := l.Create(ctx, key, "")
		if err := up.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Delete(ctx, "exports/2026/01/exp_1/a.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.Root(), "exports/2026/01/exp_1")); !os.IsNotExist(err) {
		t.Error("empty job directory left")
	}
	if ok, _ := l.Exists(ctx, "exports/2026/01/exp_2/b.csv"); !ok {
		t.Error("sibling removed")
	}
	if _, err := os.Stat(l.Root()); err != nil {
		t.Error("root removed")
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	bad := []string{
		"", "/exports/a.csv", "exports//a.csv", "exports/a.csv/", "exports/../a.csv", "../a.csv", "..",
		"exports/./a.csv", `exports\a.csv`, "exports/.a.csv.tmp-0123456789abcdef", "exports/a\x00.csv",
		"exports/a\n.csv", strings.Repeat("a", 1025),
	}
	good := []string{"exports/2026/01/exp_01J/probe-logs-2026-01-29.txt", "backups/backup_20260129.dump", "a", "用量/a b.csv", "a..b"}
	for _, k := range bad {
		if err := validKey(k); err == nil {
			t.Errorf("validKey(%q) = nil; want an error", k)
		}
	}
	for _, k := range good {
		if err := validKey(k); err != nil {
			t.Errorf("validKey(%q) = %v; want nil", k, err)
		}
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, time.Minute)
			st := b.open(t)
			for _, k := range []string{"../escape.csv", "/etc/passwd", "a//b", `a\b`} {
				if _, err := st.Create(ctx, k, ""); err == nil {
					t.Errorf("Create(%q) succeeded", k)
				}
				if _, err := st.Open(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Open(%q) = %v; want an invalid-key error", k, err)
				}
				if err := st.Delete(ctx, k); err == nil {
					t.Errorf("Delete(%q) succeeded", k)
				}
				if _, err := st.Exists(ctx, k); err == nil {
					t.Errorf("Exists(%q) succeeded", k)
				}
				if _, err := st.DownloadURL(ctx, k, "a.csv", time.Now().Add(time.Minute)); err == nil {
					t.Errorf("DownloadURL(%q) succeeded", k)
				}
			}
			for _, p := range []string{"../", "/exports", "a//"} {
				if _, err := st.AbortPending(ctx, p); err == nil {
					t.Errorf("AbortPending(%q) succeeded", p)
				}
			}
			for _, name := range []string{"", "a/b.csv", `a"b.csv`, "a\nb.csv"} {
				if _, err := st.DownloadURL(ctx, "a.csv", name, time.Now().Add(time.Minute)); err == nil {
					t.Errorf("DownloadURL(filename %q) succeeded", name)
				}
			}
			for _, exp := range []time.Time{time.Now().Add(-time.Minute), time.Now().Add(8 * 24 * time.Hour)} {
				if _, err := st.DownloadURL(ctx, "a.csv", "a.csv", exp); err == nil {
					t.Errorf("DownloadURL(expires %s) succeeded", exp)
				}
			}
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ok := Config{SigningKey: testSigningKey, PublicURL: "http://localhost:8080"}
	for _, tc := range []struct {
		name string
		c    Config
		want string // in the error
	}{
		{"empty", Config{}, "STORAGE_URL"},
		{"scheme", Config{URL: "ftp://host/dir"}, "file:///abs/dir, file://./rel/dir or s3://bucket/prefix"},
		{"http", Config{URL: "http://bucket/prefix"}, "STORAGE_URL"},
		{"file without path", Config{URL: "file://"}, "STORAGE_URL"},
		{"file with host", Config{URL: "file://data/exports"}, "file://./rel/dir"},
		{"file query", Config{URL: "file://" + dir + "?x=1"}, "STORAGE_URL"},
		{"s3 without bucket", Config{URL: "s3://"}, "STORAGE_URL"},
		{"s3 short bucket", Config{URL: "s3://b/x"}, "bucket"},
		{"s3 upper bucket", Config{URL: "s3://MyBucket/x"}, "bucket"},
		{"s3 credentials in URL", Config{URL: "s3://AKIAX:hunter2-secret@bucket/x"}, "S3_ACCESS_KEY_ID"},
		{"s3 bad prefix", Config{URL: "s3://bucket/a/../b"}, "STORAGE_URL"},
		{"s3 port", Config{URL: "s3://bucket:9000/x"}, "S3_ENDPOINT"},
		{"s3 half credentials", Config{URL: "s3://bucket/x", S3: S3Config{AccessKeyID: "AK"}}, "S3_SECRET_ACCESS_KEY"},
		{"s3 bad endpoint", Config{URL: "s3://bucket/x", S3: S3Config{Endpoint: "localhost:9000", AccessKeyID: "a", SecretAccessKey: "hunter2-secret"}}, "S3_ENDPOINT"},
		{"s3 endpoint credentials", Config{URL: "s3://bucket/x", S3: S3Config{Endpoint: "http://u:hunter2-secret@localhost:9000", AccessKeyID: "a", SecretAccessKey: "b"}}, "S3_ENDPOINT"},
		{"s3 small part", Config{URL: "s3://bucket/x", S3: S3Config{PartSize: 1 << 20, AccessKeyID: "a", SecretAccessKey: "b"}}, "5 MiB"},
		{"local short key", Config{URL: "file://" + dir, SigningKey: []byte("short"), PublicURL: ok.PublicURL}, "32 bytes"},
		{"local no public URL", Config{URL: "file://" + dir, SigningKey: ok.SigningKey}, "PUBLIC_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(context.Background(), tc.c)
			if err == nil {
				t.Fatalf("Open(%q) = %v; want an error", tc.c.URL, st)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestOpenLocalRelative(t *testing.T) {
	// Not parallel: changes the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	st, err := Open(context.Background(), Config{URL: "file://./data/exports", SigningKey: testSigningKey, PublicURL: "http://localhost:8080/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.Join(dir, "data/exports"); st.String() != want {
		t.Errorf("String() = %q; want %q", st.String(), want)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestStringHasNoSecret(t *testing.T) {
	t.Parallel()
	st, err := Open(context.Background(), Config{
		URL: "s3://bucket/prefix/",
		S3: S3Config{
			Endpoint:        "http://127.0.0.1:9/",
			AccessKeyID:     "AKIAEXAMPLE",
			SecretAccessKey: "hunter2-secret-key",
			ForcePathStyle:  true,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := st.String()
	if strings.Contains(s, "hunter2") || strings.Contains(s, "AKIAEXAMPLE") {
		t.Errorf("String() = %q shows a credential", s)
	}
	if !strings.Contains(s, "s3://bucket/prefix") || !strings.Contains(s, "127.0.0.1:9") {
		t.Errorf("String() = %q; want the bucket, prefix and endpoint", s)
	}
	l := newLocal(t)
	if strings.Contains(l.String(), string(testSigningKey)) {
		t.Errorf("String() = %q shows the signing key", l.String())
	}
}

func TestContentDisposition(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"usage-logs-20260129-103000.csv", `attachment; filename="usage-logs-20260129-103000.csv"; filename*=UTF-8''usage-logs-20260129-103000.csv`},
		{"用量 日志.csv", `attachment; filename="__ __.csv"; filename*=UTF-8''%E7%94%A8%E9%87%8F%20%E6%97%A5%E5%BF%97.csv`},
		{`a"b\c;d.txt`, `attachment; filename="a_b_c;d.txt"; filename*=UTF-8''a%22b%5Cc%3Bd.txt`},
		{"naïve.txt", `attachment; filename="na_ve.txt"; filename*=UTF-8''na%C3%AFve.txt`},
	} {
		if got := ContentDisposition(tc.name); got != tc.want {
			t.Errorf("ContentDisposition(%q)\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	for name, want := range map[string]string{
		"a.csv": "text/csv; charset=utf-8", "a.TXT": "text/plain; charset=utf-8", "a.json": "application/json",
		"a.jsonl": "application/x-ndjson", "a.csv.gz": "application/gzip",
		"a.xlsx":    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"a.parquet": "application/vnd.apache.parquet",
		"a.dump":    "application/octet-stream", "a": "application/octet-stream", "backup.dump.age": "application/vnd.age",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q; want %q", name, got, want)
		}
	}
}

// TestS3DefaultCredentialChain leaves the static keys empty: the AWS default chain (here the
// environment) supplies them, with AWS_CA_BUNDLE set as on this machine.
func TestS3DefaultCredentialChain(t *testing.T) {
	// Not parallel: sets environment variables.
	env := testenv.NewS3(t)
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", env.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", env.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	if os.Getenv("AWS_CA_BUNDLE") == "" {
		t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
	}
	ctx := ctxTimeout(t, time.Minute)
	st, err := Open(ctx, Config{URL: "s3://" + env.Bucket, S3: S3Config{Endpoint: env.Endpoint, ForcePathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	put(t, st, "a/b.csv", []byte("x,y\n"))
	mustEqualBytes(t, readAll(t, st, "a/b.csv"), []byte("x,y\n"))
}
