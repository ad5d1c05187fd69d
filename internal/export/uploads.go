package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// UploadTTL is how long an upload URL accepts a PUT: long enough to start
// sending a large dump from a slow link.
const UploadTTL = time.Hour

// DefaultMaxUploadBytes is the default of RESTORE_UPLOAD_MAX_BYTES.
const DefaultMaxUploadBytes int64 = 5 << 30

// UploadTicket says where to PUT a dump for a database_restore. The API
// answers POST /restores/uploads with it.
type UploadTicket struct {
	UploadID  string    `json:"upload_id"`
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
	// SizeBytes and SHA256 are what the creator declared: the URL takes a
	// body of exactly this size and digest, once.
	SizeBytes int64  `json:"size_bytes"`
	SHA256    string `json:"sha256"`
	// Headers must be sent with the PUT, unchanged: on S3 they are part of
	// the signature.
	Headers map[string]string `json:"headers"`
	// MaxBytes is the largest size_bytes this server accepts.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// UploadRequest is the body of POST /restores/uploads.
type UploadRequest struct {
	SizeBytes *int64  `json:"size_bytes"`
	SHA256    *string `json:"sha256"`
}

// RestoreUpload is the record of an upload URL: the restore of its upload
// id takes only an object of this size and SHA-256.
type RestoreUpload struct {
	ID        string
	SizeBytes int64
	SHA256    string // lowercase hex
	UserID    int64
	KeyID     int64
	Actor     string
	CreatedAt time.Time
	ExpiresAt time.Time // of the URL
}

// UploadStore keeps the records of restore uploads (PostgreSQL).
type UploadStore interface {
	CreateUpload(ctx context.Context, u *RestoreUpload) error
	// Upload returns the record of id, or ErrNotFound.
	Upload(ctx context.Context, id string) (*RestoreUpload, error)
	// DeleteUpload removes the record of id; a missing one is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// StaleUploads lists up to limit records created before t, oldest first.
	StaleUploads(ctx context.Context, t time.Time, limit int) ([]*RestoreUpload, error)
}

// UploadSpec is what a signed upload URL admits: one PUT of exactly
// SizeBytes bytes whose SHA-256 is SHA256, to Key, until Expires.
type UploadSpec struct {
	Key       string
	SizeBytes int64
	SHA256    string // lowercase hex
	Expires   time.Time
}

// SignedUpload is an upload URL and the headers its PUT must carry.
type SignedUpload struct {
	URL     string
	Headers map[string]string
}

// UploadLimiter is implemented by stores whose upload URLs take files up to
// a size.
type UploadLimiter interface {
	MaxUploadBytes() int64
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidSHA256 reports whether s is a SHA-256 digest in lowercase hex.
func ValidSHA256(s string) bool { return sha256Pattern.MatchString(s) }

// ParseUploadRequest checks the body of POST /restores/uploads against the
// largest size accepted; limitName says where that limit comes from.
func ParseUploadRequest(raw json.RawMessage, limit int64, limitName string) (size int64, sum string, err error) {
	var in UploadRequest
	if err := DecodeStrict(raw, &in, ""); err != nil {
		return 0, "", err
	}
	const how = "compute it with: stat -c %s FILE and sha256sum FILE"
	switch {
	case in.SizeBytes == nil:
		return 0, "", Invalid("size_bytes", "is required: the exact size of the dump in bytes; %s", how)
	case *in.SizeBytes < 1:
		return 0, "", Invalid("size_bytes", "must be the dump's size in bytes, at least 1, not %d", *in.SizeBytes)
	case *in.SizeBytes > limit:
		return 0, "", &Error{Kind: KindTooLarge, Code: "upload_too_large",
			Message: fmt.Sprintf("size_bytes: %d bytes is over the limit of %d bytes (%s)", *in.SizeBytes, limit, limitName),
			Fields:  map[string]string{"size_bytes": fmt.Sprintf("at most %d (%s)", limit, limitName)}}
	case in.SHA256 == nil:
		return 0, "", Invalid("sha256", "is required: the dump's SHA-256 in hex; %s", how)
	}
	sum = strings.ToLower(strings.TrimSpace(*in.SHA256))
	if !ValidSHA256(sum) {
		return 0, "", Invalid("sha256", "must be 64 hexadecimal digits (the first word of sha256sum's output)")
	}
	return *in.SizeBytes, sum, nil
}

// uploadLimit is the largest upload accepted and the setting that says so.
func (s *Service) uploadLimit() (int64, string) {
	limit, name := s.MaxUploadBytes, "RESTORE_UPLOAD_MAX_BYTES"
	if limit <= 0 {
		limit = DefaultMaxUploadBytes
	}
	if l, ok := s.Objects.(UploadLimiter); ok && l.MaxUploadBytes() > 0 && l.MaxUploadBytes() < limit {
		limit, name = l.MaxUploadBytes(), "the storage's largest single upload"
	}
	return limit, name
}

// CreateUpload records an upload and issues its URL. The file goes
// straight to the object store (a presigned PUT, or the API's own signed
// upload handler), never through a reverse proxy's body limit. The URL
// takes one body of the declared size and SHA-256, and the restore checks
// the digest again, so the dump cannot be swapped after it was checked.
func (s *Service) CreateUpload(ctx context.Context, p Principal, raw json.RawMessage, address string) (t UploadTicket, err error) {
	defer func() {
		target := ""
		if t.UploadID != "" {
			target = "upload:" + t.UploadID
		}
		var params map[string]any
		if t.UploadID != "" {
			params = map[string]any{"size_bytes": t.SizeBytes, "sha256": t.SHA256}
		}
		s.trail().record(ctx, p, "restore.upload_url", target, address, err, params)
	}()
	if !p.Admin {
		return UploadTicket{}, Errorf(KindForbidden, "admin_only", "restore uploads are for administrators only")
	}
	limit, limitName := s.uploadLimit()
	size, sum, err := ParseUploadRequest(raw, limit, limitName)
	if err != nil {
		return UploadTicket{}, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return UploadTicket{}, fmt.Errorf("export: upload id: %w", err)
	}
	id := "upl_" + hex.EncodeToString(b[:])
	now := s.Now().UTC()
	expires := now.Add(UploadTTL).Truncate(time.Second)
	rec := &RestoreUpload{ID: id, SizeBytes: size, SHA256: sum, UserID: p.UserID, KeyID: p.KeyID,
		Actor: p.String(), CreatedAt: now, ExpiresAt: expires}
	if err := s.Uploads.CreateUpload(ctx, rec); err != nil {
		return UploadTicket{}, fmt.Errorf("export: record upload %s: %w", id, err)
	}
	link, err := s.Objects.UploadURL(ctx, UploadSpec{Key: UploadKey(id), SizeBytes: size, SHA256: sum, Expires: expires})
	if err != nil {
		return UploadTicket{}, fmt.Errorf("export: sign upload %s: %w", id, err)
	}
	headers := link.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	return UploadTicket{UploadID: id, URL: link.URL, Method: "PUT", ExpiresAt: expires,
		SizeBytes: size, SHA256: sum, Headers: headers, MaxBytes: limit}, nil
}
