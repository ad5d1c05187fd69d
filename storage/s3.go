package storage

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/hubexport/hubexport/internal/export"
)

const (
	defaultRegion      = "us-east-1"
	defaultPartSize    = 8 << 20
	minPartSize        = 5 << 20 // S3's minimum for every part but the last
	maxPartSize        = 5 << 30
	maxParts           = 10000
	defaultConcurrency = 2
	maxConcurrency     = 64
)

// S3 keeps artifacts in a bucket, under an optional key prefix.
type S3 struct {
	client    *s3.Client
	presign   *s3.PresignClient // signs for the public endpoint
	bucket    string
	prefix    string // "" or "a/b" (no slashes at the ends)
	endpoint  string // for String
	partSize  int64
	conc      int
	abortWait time.Duration // bound on the automatic abort after a failure
}

var _ export.ObjectStore = (*S3)(nil)

func openS3(ctx context.Context, bucket, prefix string, c S3Config) (*S3, error) {
	if c.PartSize == 0 {
		c.PartSize = defaultPartSize
	}
	if c.PartSize < minPartSize || c.PartSize > maxPartSize {
		return nil, fmt.Errorf("storage: S3 part size %d: must be between 5 MiB and 5 GiB", c.PartSize)
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		return nil, fmt.Errorf("storage: S3 upload concurrency %d: must be between 1 and %d", c.Concurrency, maxConcurrency)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, errors.New("storage: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither to use the AWS default credential chain")
	}
	for name, ep := range map[string]string{"S3_ENDPOINT": c.Endpoint, "S3_PUBLIC_ENDPOINT": c.PublicEndpoint} {
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return nil, fmt.Errorf("storage: %s %s: want http(s)://host[:port]", name, redactURL(ep))
		}
	}

	configure := func(o *s3.Options) {
		o.Region = c.Region
		o.UsePathStyle = c.ForcePathStyle
		// S3-compatible servers may reject the CRC32 checksums the SDK adds by default.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}
	publicEndpoint := func(o *s3.Options) {
		if c.PublicEndpoint != "" {
			o.BaseEndpoint = aws.String(c.PublicEndpoint)
		}
	}
	var client, public *s3.Client
	if c.AccessKeyID != "" {
		// Built from scratch, so ambient AWS_* settings (profiles, AWS_CA_BUNDLE) do not apply.
		if c.Region == "" {
			c.Region = defaultRegion
		}
		opts := s3.Options{
			Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
			HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
				// A server that takes a part and never answers must not hang an upload.
				t.ResponseHeaderTimeout = 5 * time.Minute
			}),
		}
		client = s3.New(opts, configure)
		public = s3.New(opts, configure, publicEndpoint)
	} else {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("storage: load AWS default configuration: %w", err)
		}
		if c.Region == "" {
			c.Region = cfg.Region
		}
		if c.Region == "" {
			c.Region = defaultRegion
		}
		client = s3.NewFromConfig(cfg, configure)
		public = s3.NewFromConfig(cfg, configure, publicEndpoint)
	}
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = "aws"
	}
	return &S3{
		client:    client,
		presign:   s3.NewPresignClient(public),
		bucket:    bucket,
		prefix:    prefix,
		endpoint:  endpoint,
		partSize:  c.PartSize,
		conc:      c.Concurrency,
		abortWait: 30 * time.Second,
	}, nil
}

// String names the bucket, prefix and endpoint; never credentials.
func (s *S3) String() string {
	u := "s3://" + s.bucket
	if s.prefix != "" {
		u += "/" + s.prefix
	}
	if s.endpoint != "aws" {
		if e, err := url.Parse(s.endpoint); err == nil {
			e.User = nil
			return u + " (endpoint " + e.String() + ")"
		}
	}
	return u
}

func (s *S3) objectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

// Ping checks that the bucket is reachable with our credentials.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("storage: s3 ping bucket %q: %w", s.bucket, err)
	}
	return nil
}

// Create starts a streaming upload. Parts are uploaded while the caller writes; an object
// smaller than one part is sent with a single PutObject at Commit. ctx bounds the part
// uploads: cancelling it makes the next Write fail.
func (s *S3) Create(ctx context.Context, key, contentType string) (export.Upload, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	if contentType == "" {
		contentType = ContentType(key)
	}
	return newS3Upload(ctx, s, key, contentType), nil
}

// Open reads a committed object.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))})
	if isS3NotFound(err) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: s3 open %q: %w", key, err)
	}
	return out.Body, nil
}

// Delete removes a committed object; S3 does not complain about a missing one.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))})
	if err != nil && !isS3NotFound(err) {
		return fmt.Errorf("storage: s3 delete %q: %w", key, err)
	}
	return nil
}

// Exists reports whether a committed object is at key.
func (s *S3) Exists(ctx context.Context, key string) (bool, error) {
	if err := validKey(key); err != nil {
		return false, err
	}
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))})
	if isS3NotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: s3 exists %q: %w", key, err)
	}
	return true, nil
}

// DownloadURL presigns a GET for the public endpoint that names the file in
// response-content-disposition.
func (s *S3) DownloadURL(ctx context.Context, key, filename string, expires time.Time) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	if err := validFilename(filename); err != nil {
		return "", err
	}
	if err := checkExpiry(expires); err != nil {
		return "", err
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     &s.bucket,
		Key:                        aws.String(s.objectKey(key)),
		ResponseContentDisposition: aws.String(ContentDisposition(filename)),
		ResponseContentType:        aws.String(ContentType(filename)),
		ResponseCacheControl:       aws.String("private, no-store"),
	}, s3.WithPresignExpires(time.Until(expires).Round(time.Second)))
	if err != nil {
		return "", fmt.Errorf("storage: s3 presign %q: %w", key, err)
	}
	return req.URL, nil
}

// maxPutBytes is the largest object one PUT may carry: an upload link takes files up to it.
const maxPutBytes = 5 << 30

// MaxUploadBytes is the largest file an upload link takes (S3's single-PUT limit).
func (s *S3) MaxUploadBytes() int64 { return maxPutBytes }

// UploadURL presigns a PUT of u.Key for the public endpoint that takes one body of exactly
// u.SizeBytes bytes with SHA-256 u.SHA256, once. Content-Length, x-amz-checksum-sha256 and
// If-None-Match: * are signed headers (SigV4 never moves checksum or conditional headers into
// the query), so the client must send the last two as given and the server checks them: a body
// of another size or digest, or a PUT to a key that already holds an object, is refused. The
// content type is not signed, so a client may send any (curl -T sends none).
func (s *S3) UploadURL(ctx context.Context, u export.UploadSpec) (export.SignedUpload, error) {
	if err := validKey(u.Key); err != nil {
		return export.SignedUpload{}, err
	}
	if err := checkUploadSpec(u); err != nil {
		return export.SignedUpload{}, err
	}
	sum, err := hex.DecodeString(u.SHA256)
	if err != nil {
		return export.SignedUpload{}, fmt.Errorf("storage: upload digest %q: %w", u.SHA256, err)
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            aws.String(s.objectKey(u.Key)),
		ContentLength:  aws.Int64(u.SizeBytes),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		IfNoneMatch:    aws.String("*"),
	}, s3.WithPresignExpires(time.Until(u.Expires).Round(time.Second)))
	if err != nil {
		return export.SignedUpload{}, fmt.Errorf("storage: s3 presign upload %q: %w", u.Key, err)
	}
	headers := map[string]string{}
	for k, v := range req.SignedHeader {
		// Every HTTP client sends Host and Content-Length by itself.
		if len(v) == 0 || strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") {
			continue
		}
		headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ",")
	}
	return export.SignedUpload{URL: req.URL, Headers: headers}, nil
}

// AbortPending aborts the multipart uploads of keys starting with prefix.
func (s *S3) AbortPending(ctx context.Context, prefix string) (int, error) {
	if err := validPrefix(prefix); err != nil {
		return 0, err
	}
	n, err := s.abortUploads(ctx, s.objectKey(prefix), func(context.Context, types.MultipartUpload) (bool, error) { return true, nil })
	if err != nil {
		return n, fmt.Errorf("storage: s3 abort pending %q: %w", prefix, err)
	}
	return n, nil
}

// Sweep aborts the multipart uploads under the store's prefix that were initiated before
// olderThan and have received no part since: a long upload that is still going is left alone.
func (s *S3) Sweep(ctx context.Context, olderThan time.Time) (int, error) {
	listPrefix := ""
	if s.prefix != "" {
		listPrefix = s.prefix + "/"
	}
	n, err := s.abortUploads(ctx, listPrefix, func(ctx context.Context, u types.MultipartUpload) (bool, error) {
		if u.Initiated == nil || !u.Initiated.Before(olderThan) {
			return false, nil
		}
		active, err := s.partSince(ctx, u, olderThan)
		return !active, err
	})
	if err != nil {
		return n, fmt.Errorf("storage: s3 sweep: %w", err)
	}
	return n, nil
}

// ListOlder lists the committed objects whose key starts with prefix and that were last
// modified before olderThan. Multipart uploads in progress are not objects yet, so they are
// never listed.
func (s *S3) ListOlder(ctx context.Context, prefix string, olderThan time.Time) ([]string, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	base := s.objectKey("")
	listPrefix := s.objectKey(prefix)
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket}
	if listPrefix != "" {
		in.Prefix = &listPrefix
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return keys, fmt.Errorf("storage: s3 list older %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if o.LastModified == nil || !o.LastModified.Before(olderThan) || !strings.HasPrefix(k, listPrefix) || len(k) <= len(base) {
				continue
			}
			keys = append(keys, k[len(base):])
		}
	}
	return keys, nil
}

// partSince reports whether upload u received a part at or after t.
func (s *S3) partSince(ctx context.Context, u types.MultipartUpload, t time.Time) (bool, error) {
	pages := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNoSuchUpload(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("list parts of %q: %w", aws.ToString(u.Key), err)
		}
		for _, p := range page.Parts {
			if p.LastModified != nil && !p.LastModified.Before(t) {
				return true, nil
			}
		}
	}
	return false, nil
}

// abortUploads aborts the multipart uploads of keys starting with prefix that match, and
// counts those it aborted.
func (s *S3) abortUploads(ctx context.Context, prefix string, match func(context.Context, types.MultipartUpload) (bool, error)) (int, error) {
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, fmt.Errorf("list multipart uploads: %w", err)
		}
		for _, u := range out.Uploads {
			if u.Key == nil || u.UploadId == nil {
				continue
			}
			if ok, err := match(ctx, u); err != nil || !ok {
				if err != nil {
					return n, err
				}
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId})
			switch {
			case isNoSuchUpload(err): // finished or aborted meanwhile
			case err != nil:
				return n, fmt.Errorf("abort multipart upload of %q: %w", aws.ToString(u.Key), err)
			default:
				n++
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		next := aws.ToString(out.NextKeyMarker)
		if next == "" || (next == aws.ToString(in.KeyMarker) && aws.ToString(out.NextUploadIdMarker) == aws.ToString(in.UploadIdMarker)) {
			return n, nil // a server that claims more but does not move on
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

func isS3NotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload"
}
