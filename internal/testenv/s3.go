package testenv

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hubexport/hubexport/internal/localserver"
)

// S3 is one fresh bucket on an S3 server that verifies SigV4 signatures.
type S3 struct {
	Endpoint  string // http://127.0.0.1:port; use path-style addressing
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
}

// NewS3 creates a fresh bucket on the versitygw shared by this test binary, or on
// TEST_S3_ENDPOINT, and empties and removes it at cleanup (best effort).
func NewS3(t testing.TB) *S3 {
	t.Helper()
	s3srv.once.Do(func() { s3srv.base, s3srv.err = s3Server() })
	if s3srv.err != nil {
		unavailable(t, s3srv.err)
	}
	b := s3srv.base
	b.Bucket = "hxt-" + randomHex(8)
	c := b.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.CreateBucketInput{Bucket: aws.String(b.Bucket)}
	if b.Region != "us-east-1" { // AWS rejects an explicit us-east-1 constraint
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(b.Region),
		}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatalf("testenv: create bucket %s on %s: %v", b.Bucket, b.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.removeBucket(ctx, c); err != nil {
			t.Logf("testenv: remove bucket %s: %v", b.Bucket, err)
		}
	})
	return &b
}

var s3srv struct {
	once sync.Once
	base S3 // without Bucket
	err  error
}

func s3Server() (S3, error) {
	if ep := os.Getenv("TEST_S3_ENDPOINT"); ep != "" {
		s := S3{
			Endpoint:  ep,
			Region:    os.Getenv("TEST_S3_REGION"),
			AccessKey: os.Getenv("TEST_S3_ACCESS_KEY"),
			SecretKey: os.Getenv("TEST_S3_SECRET_KEY"),
		}
		if s.Region == "" {
			s.Region = "us-east-1"
		}
		if s.AccessKey == "" || s.SecretKey == "" {
			return S3{}, errors.New("testenv: TEST_S3_ENDPOINT is set but TEST_S3_ACCESS_KEY or TEST_S3_SECRET_KEY is not")
		}
		return s, nil
	}
	return startVersityGW()
}

// client builds the SDK client directly: config.LoadDefaultConfig would pick up ambient AWS_*
// settings (AWS_CA_BUNDLE breaks it on some machines).
func (s S3) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
	})
}

func (s S3) removeBucket(ctx context.Context, c *s3.Client) error {
	var errs []error
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.Bucket)})
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, u := range uploads.Uploads {
			_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: u.Key, UploadId: u.UploadId})
			errs = append(errs, err)
		}
	}
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			errs = append(errs, err)
			break
		}
		for _, o := range page.Contents {
			_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: o.Key})
			errs = append(errs, err)
		}
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(s.Bucket)})
	errs = append(errs, err)
	return errors.Join(errs...)
}

const versitygwHint = "install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 " +
	"(or set VERSITYGW to its path, or set TEST_S3_ENDPOINT)"

// versitygwBinary looks in $VERSITYGW, PATH, then the Go bin directory where go install puts it.
func versitygwBinary() (string, error) {
	if bin := os.Getenv("VERSITYGW"); bin != "" {
		if !localserver.IsExecutable(bin) {
			return "", fmt.Errorf("testenv: VERSITYGW=%s is not an executable file", bin)
		}
		return bin, nil
	}
	if bin, err := exec.LookPath("versitygw"); err == nil {
		return bin, nil
	}
	var gopaths []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopaths = append(gopaths, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	gopaths = append(gopaths, filepath.SplitList(build.Default.GOPATH)...)
	for _, gp := range gopaths {
		if bin := filepath.Join(gp, "bin", "versitygw"); gp != "" && localserver.IsExecutable(bin) {
			return bin, nil
		}
	}
	return "", errors.New("testenv: versitygw not found in $VERSITYGW, PATH or $(go env GOPATH)/bin: " + versitygwHint)
}

func startVersityGW() (S3, error) {
	bin, err := versitygwBinary()
	if err != nil {
		return S3{}, err
	}
	root, err := rootDir()
	if err != nil {
		return S3{}, err
	}
	// Absolute paths: the posix backend chdirs into its root directory.
	dir := filepath.Join(root, "s3")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return S3{}, fmt.Errorf("testenv: versitygw dir: %w", err)
	}
	s := S3{Region: "us-east-1", AccessKey: "hxt-access-" + randomHex(4), SecretKey: "hxt-secret-" + randomHex(12)}
	env := append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	hc := &http.Client{Timeout: time.Second}
	for attempt := 1; ; attempt++ {
		port, err := localserver.FreePort()
		if err != nil {
			return S3{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		s.Endpoint = "http://" + addr
		proc, err := localserver.Start("versitygw", filepath.Join(dir, "versitygw.log"), dir, nil, env, bin,
			"--port", addr, "--region", s.Region, "--quiet", "posix", data)
		if err != nil {
			return S3{}, err
		}
		// Any HTTP answer means it is serving; an unsigned GET / gets 403.
		err = proc.WaitReady(30*time.Second, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			return resp.Body.Close()
		})
		if err == nil {
			// SIGTERM costs about 2 s of graceful shutdown for nothing.
			atExit(func() { proc.Stop(syscall.SIGKILL, 0) })
			return s, nil
		}
		proc.Stop(syscall.SIGKILL, 0)
		if attempt == 3 || !errors.Is(err, localserver.ErrExited) || !proc.PortTaken() {
			return S3{}, fmt.Errorf("%w\n(versitygw at %s; %s)", err, bin, versitygwHint)
		}
	}
}
