package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// UploadTTL is how long an upload URL accepts a PUT: long enough to start
// sending a large dump from a slow link.
const UploadTTL = time.Hour

// UploadTicket says where to PUT a dump for a database_restore. The API
// answers POST /restores/uploads with it.
type UploadTicket struct {
	UploadID  string    `json:"upload_id"`
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
	// MaxBytes is the largest file the URL takes (S3: 5 GiB for one PUT);
	// 0 means no limit of its own.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// UploadLimiter is implemented by stores whose upload URLs take files up to
// a size.
type UploadLimiter interface {
	MaxUploadBytes() int64
}

// CreateUpload issues an upload URL for a restore's dump. The file goes
// straight to the object store (a presigned PUT, or the API's own signed
// upload handler), never through a reverse proxy's body limit.
func (s *Service) CreateUpload(ctx context.Context, p Principal, address string) (t UploadTicket, err error) {
	defer func() {
		target := ""
		if t.UploadID != "" {
			target = "upload:" + t.UploadID
		}
		s.audit(ctx, p, "restore.upload_url", target, address, err, nil)
	}()
	if !p.Admin {
		return UploadTicket{}, Errorf(KindForbidden, "admin_only", "restore uploads are for administrators only")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return UploadTicket{}, fmt.Errorf("export: upload id: %w", err)
	}
	id := "upl_" + hex.EncodeToString(b[:])
	expires := s.Now().Add(UploadTTL).UTC().Truncate(time.Second)
	url, err := s.Objects.UploadURL(ctx, UploadKey(id), expires)
	if err != nil {
		return UploadTicket{}, fmt.Errorf("export: sign upload %s: %w", id, err)
	}
	t = UploadTicket{UploadID: id, URL: url, Method: "PUT", ExpiresAt: expires}
	if l, ok := s.Objects.(UploadLimiter); ok {
		t.MaxBytes = l.MaxUploadBytes()
	}
	return t, nil
}
