package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Upload streams an object into S3. The writer fills one part buffer while at most
// Concurrency parts upload, so at most Concurrency+1 buffers of PartSize bytes exist. The
// multipart upload starts only when more than one part's worth has been written; smaller
// objects go out as one PutObject at Commit.
//
// An s3Upload is not safe for concurrent use; cancel the context given to Create to interrupt
// a blocked Write.
type s3Upload struct {
	s           *S3
	key         string // as given
	objKey      string // with the store's prefix
	contentType string

	ctx         context.Context // from Create
	partCtx     context.Context // bounds CreateMultipartUpload and UploadPart; cancelled on failure
	cancelParts context.CancelFunc

	cur       []byte      // the part being filled
	free      chan []byte // buffers of finished parts
	allocated int
	sem       chan struct{} // one token per part in flight

	uploadID string
	lastPart int32
	wg       sync.WaitGroup

	mu     sync.Mutex
	parts  []types.CompletedPart
	err    error         // first part failure
	failed chan struct{} // closed at the first part failure

	state string // "" while open, then "committed", "aborted" or "failed"
	final error  // what Write and Commit return once failed
}

func newS3Upload(ctx context.Context, s *S3, key, contentType string) *s3Upload {
	partCtx, cancel := context.WithCancel(ctx)
	return &s3Upload{
		s:           s,
		key:         key,
		objKey:      s.objectKey(key),
		contentType: contentType,
		ctx:         ctx,
		partCtx:     partCtx,
		cancelParts: cancel,
		free:        make(chan []byte, s.conc+1),
		sem:         make(chan struct{}, s.conc),
		failed:      make(chan struct{}),
	}
}

func (u *s3Upload) partErr() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) setPartErr(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
		close(u.failed)
	}
}

func (u *s3Upload) closed() error {
	if u.final != nil {
		return u.final
	}
	return closedError(u.state)
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if u.state != "" {
		return 0, u.closed()
	}
	if err := u.partErr(); err != nil {
		return 0, u.fail(err)
	}
	if err := u.partCtx.Err(); err != nil {
		return 0, u.fail(fmt.Errorf("storage: s3 write %q: %w", u.key, err))
	}
	n := 0
	for len(p) > 0 {
		if int64(len(u.cur)) == u.s.partSize {
			if err := u.sendPart(); err != nil {
				return n, u.fail(err)
			}
		}
		if u.cur == nil {
			buf, err := u.buffer()
			if err != nil {
				return n, u.fail(err)
			}
			u.cur = buf
		}
		k := min(len(p), int(u.s.partSize)-len(u.cur))
		u.cur = appendBounded(u.cur, p[:k], int(u.s.partSize))
		p = p[k:]
		n += k
	}
	return n, nil
}

// appendBounded appends p to buf, growing it at most to limit bytes of capacity.
func appendBounded(buf, p []byte, limit int) []byte {
	if need := len(buf) + len(p); need > cap(buf) {
		nb := make([]byte, len(buf), min(max(2*cap(buf), need), limit))
		copy(nb, buf)
		buf = nb
	}
	return append(buf, p...)
}

// buffer returns an empty part buffer, waiting for a part to finish when all are in use.
func (u *s3Upload) buffer() ([]byte, error) {
	select {
	case b := <-u.free:
		return b[:0], nil
	default:
	}
	if u.allocated < cap(u.free) {
		u.allocated++
		if u.uploadID == "" {
			return make([]byte, 0, min(64<<10, u.s.partSize)), nil // most objects are small
		}
		return make([]byte, 0, u.s.partSize), nil
	}
	select {
	case b := <-u.free:
		return b[:0], nil
	case <-u.failed:
		return nil, u.partErr()
	case <-u.partCtx.Done():
		return nil, fmt.Errorf("storage: s3 write %q: %w", u.key, u.partCtx.Err())
	}
}

// sendPart starts uploading the current buffer as the next part, starting the multipart
// upload first if needed.
func (u *s3Upload) sendPart() error {
	if u.uploadID == "" {
		out, err := u.s.client.CreateMultipartUpload(u.partCtx, &s3.CreateMultipartUploadInput{
			Bucket:      &u.s.bucket,
			Key:         &u.objKey,
			ContentType: &u.contentType,
		})
		if err != nil {
			return fmt.Errorf("storage: s3 create multipart upload %q: %w", u.key, err)
		}
		u.uploadID = aws.ToString(out.UploadId)
	}
	if u.lastPart == maxParts {
		return fmt.Errorf("storage: s3 upload %q: more than %d parts of %d bytes; raise the part size", u.key, maxParts, u.s.partSize)
	}
	select {
	case u.sem <- struct{}{}:
	case <-u.failed:
		return u.partErr()
	case <-u.partCtx.Done():
		return fmt.Errorf("storage: s3 write %q: %w", u.key, u.partCtx.Err())
	}
	u.lastPart++
	num, buf := u.lastPart, u.cur
	u.cur = nil
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		out, err := u.s.client.UploadPart(u.partCtx, &s3.UploadPartInput{
			Bucket:        &u.s.bucket,
			Key:           &u.objKey,
			UploadId:      &u.uploadID,
			PartNumber:    aws.Int32(num),
			Body:          bytes.NewReader(buf),
			ContentLength: aws.Int64(int64(len(buf))),
		})
		<-u.sem
		u.free <- buf
		if err != nil {
			u.setPartErr(fmt.Errorf("storage: s3 upload part %d of %q: %w", num, u.key, err))
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		u.mu.Unlock()
	}()
	return nil
}

// fail ends the upload with err: it stops the parts in flight and aborts the multipart upload
// (bounded in time, even when the caller's context has ended). If that abort fails, a later
// Abort, AbortPending or Sweep retries it.
func (u *s3Upload) fail(err error) error {
	u.state, u.final = "failed", err
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), u.s.abortWait)
	defer cancel()
	_ = u.cleanup(ctx)
	return err
}

// cleanup stops the parts, releases the buffers and aborts the multipart upload, if any.
func (u *s3Upload) cleanup(ctx context.Context) error {
	u.cancelParts()
	u.wg.Wait()
	u.releaseBuffers()
	if u.uploadID == "" {
		return nil
	}
	// A part whose request was cancelled may still land on the server after
	// the abort and bring the upload back (S3 documents this; versitygw
	// does it too), so abort until the upload is really gone.
	for try := 0; ; try++ {
		_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   &u.s.bucket,
			Key:      &u.objKey,
			UploadId: &u.uploadID,
		})
		if err != nil && !isNoSuchUpload(err) {
			return fmt.Errorf("storage: s3 abort multipart upload %q: %w", u.key, err)
		}
		_, err = u.s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &u.s.bucket, Key: &u.objKey, UploadId: &u.uploadID})
		if isNoSuchUpload(err) || try == 4 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("storage: s3 abort multipart upload %q: %w", u.key, ctx.Err())
		case <-time.After(time.Duration(50*(try+1)) * time.Millisecond):
		}
	}
	u.uploadID = ""
	return nil
}

func (u *s3Upload) Commit(ctx context.Context) error {
	if u.state != "" {
		return u.closed()
	}
	if err := u.partErr(); err != nil {
		return u.fail(err)
	}
	if u.uploadID == "" {
		body := u.cur
		_, err := u.s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &u.s.bucket,
			Key:           &u.objKey,
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			ContentType:   &u.contentType,
		})
		u.cur = nil
		u.cancelParts()
		if err != nil {
			u.state, u.final = "failed", fmt.Errorf("storage: s3 put %q: %w", u.key, err)
			return u.final
		}
		u.state = "committed"
		return nil
	}
	if len(u.cur) > 0 {
		if err := u.sendPart(); err != nil {
			return u.fail(err)
		}
	}
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return u.fail(fmt.Errorf("storage: s3 commit %q: %w", u.key, ctx.Err()))
	}
	if err := u.partErr(); err != nil {
		return u.fail(err)
	}
	parts := slices.Clone(u.parts)
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	if len(parts) != int(u.lastPart) {
		return u.fail(fmt.Errorf("storage: s3 commit %q: %d of %d parts uploaded", u.key, len(parts), u.lastPart))
	}
	_, err := u.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &u.s.bucket,
		Key:             &u.objKey,
		UploadId:        &u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return u.fail(fmt.Errorf("storage: s3 complete multipart upload %q: %w", u.key, err))
	}
	u.state = "committed"
	u.cancelParts()
	u.releaseBuffers()
	return nil
}

// releaseBuffers drops the part buffers so that a finished upload pins no memory.
func (u *s3Upload) releaseBuffers() {
	u.cur = nil
	for len(u.free) > 0 {
		<-u.free
	}
}

// Abort discards the upload. After a successful Commit it does nothing, so it may be deferred;
// after a failure it retries an abort that did not go through.
func (u *s3Upload) Abort(ctx context.Context) error {
	switch u.state {
	case "committed", "aborted":
		return nil
	}
	if err := u.cleanup(ctx); err != nil {
		if u.state == "" {
			u.state, u.final = "failed", errors.New("storage: upload aborted")
		}
		return err
	}
	if u.state == "" {
		u.state = "aborted"
	}
	return nil
}
