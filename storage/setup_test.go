package storage

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const testPartSize = 5 << 20

var testSigningKey = []byte("test-signing-key-0123456789abcdef-local")

// newLocal opens a local store in a fresh directory, with its file handler served by an
// httptest server whose URL is the store's PublicURL.
func newLocal(t testing.TB) *Local {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.Load(); p != nil && strings.HasPrefix(r.URL.Path, FilesPath) {
			(*p).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	st, err := Open(context.Background(), Config{URL: "file://" + t.TempDir(), SigningKey: testSigningKey, PublicURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	l := st.(*Local)
	handler := l.Handler()
	h.Store(&handler)
	return l
}

// s3Env is an S3 store on a fresh bucket, and a raw client to look behind its back.
type s3Env struct {
	*S3
	env *testenv.S3
	raw *s3.Client
}

// newS3 opens an S3 store with prefix "tenant-a" on a fresh bucket; mod may change the config
// (point it at a proxy, another prefix).
func newS3(t testing.TB, mod func(*Config)) *s3Env {
	t.Helper()
	env := testenv.NewS3(t)
	c := Config{
		URL: "s3://" + env.Bucket + "/tenant-a",
		S3: S3Config{
			Endpoint:        env.Endpoint,
			Region:          env.Region,
			AccessKeyID:     env.AccessKey,
			SecretAccessKey: env.SecretKey,
			ForcePathStyle:  true,
			PartSize:        testPartSize,
			Concurrency:     2,
		},
	}
	if mod != nil {
		mod(&c)
	}
	st, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	raw := s3.New(s3.Options{
		Region:       env.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
		BaseEndpoint: aws.String(env.Endpoint),
		UsePathStyle: true,
	})
	return &s3Env{S3: st.(*S3), env: env, raw: raw}
}

// pendingUploads lists the multipart uploads in the bucket, whatever their prefix.
func (e *s3Env) pendingUploads(t testing.TB) []string {
	t.Helper()
	out, err := e.raw.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.env.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

type backend struct {
	name string
	open func(t testing.TB) export.ObjectStore
}

func backends() []backend {
	return []backend{
		{"local", func(t testing.TB) export.ObjectStore { return newLocal(t) }},
		{"s3", func(t testing.TB) export.ObjectStore { return newS3(t, nil) }},
	}
}

// testData returns n reproducible pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// writeChunked writes data in uneven chunks, as an encoder would.
func writeChunked(t testing.TB, w io.Writer, data []byte) {
	t.Helper()
	sizes := []int{1, 17, 4096, 65536, 1 << 20, 3<<20 + 7}
	for i := 0; len(data) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		data = data[n:]
	}
}

func readAll(t testing.TB, st export.ObjectStore, key string) []byte {
	t.Helper()
	rc, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func mustEqualBytes(t testing.TB, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (equal length: %v)", len(got), len(want), len(got) == len(want))
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
