package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubexport/hubexport/internal/export"
)

// Config selects and configures a store.
type Config struct {
	// URL is STORAGE_URL: file:///abs/dir, file://./rel/dir or s3://bucket/prefix.
	URL string
	// SigningKey is the HMAC key for local download links (at least 32 bytes; local backend only).
	SigningKey []byte
	// PublicURL is how clients reach the API, e.g. http://localhost:8080: the base of local
	// download links (local backend only).
	PublicURL string
	// S3 configures the s3:// backend.
	S3 S3Config
}

// S3Config configures the S3 backend.
type S3Config struct {
	Endpoint        string // S3_ENDPOINT; empty: AWS
	PublicEndpoint  string // S3_PUBLIC_ENDPOINT: presigned links are signed for this host; empty: Endpoint
	Region          string // default us-east-1
	AccessKeyID     string // empty (with SecretAccessKey): the AWS default credential chain
	SecretAccessKey string
	ForcePathStyle  bool
	PartSize        int64 // multipart part size; default 8 MiB, at least 5 MiB
	Concurrency     int   // parts uploaded at once per upload; default 2
}

// FileServer is implemented by stores that serve their own download links (the local backend).
// The API mounts Handler at FilesPath.
type FileServer interface {
	Handler() http.Handler
}

// FilesPath is where the API mounts a FileServer's handler; local download links point below it.
const FilesPath = "/api/v1/files/"

// ErrNotFound is returned (wrapped) by Open when no committed object is at the key. It also
// matches fs.ErrNotExist, so callers that only know the standard library can test for it.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string        { return "storage: object not found" }
func (notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

func notFound(key string) error { return fmt.Errorf("storage: open %q: %w", key, ErrNotFound) }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func closedError(state string) error { return fmt.Errorf("storage: upload already %s", state) }

const urlForms = "file:///abs/dir, file://./rel/dir or s3://bucket/prefix"

// Open returns the store STORAGE_URL names.
func Open(ctx context.Context, c Config) (export.ObjectStore, error) {
	raw := strings.TrimSpace(c.URL)
	switch {
	case strings.HasPrefix(raw, "file://"):
		return openLocal(raw, c)
	case strings.HasPrefix(raw, "s3://"):
		bucket, prefix, err := parseS3URL(raw)
		if err != nil {
			return nil, err
		}
		return openS3(ctx, bucket, prefix, c.S3)
	case raw == "":
		return nil, fmt.Errorf("storage: STORAGE_URL is empty; use %s", urlForms)
	default:
		return nil, fmt.Errorf("storage: STORAGE_URL %s: unsupported; use %s", redactURL(raw), urlForms)
	}
}

// redactURL shows a URL in an error without a password that may sit in it.
func redactURL(raw string) string { return strconv.Quote(export.RedactURL(raw)) }

// localRoot extracts the directory of a file:// URL: an absolute path, or one relative to the
// working directory starting with ./ or ../.
func localRoot(raw string) (string, error) {
	p := strings.TrimPrefix(raw, "file://")
	bad := func(why string) error {
		return fmt.Errorf("storage: STORAGE_URL %s: %s; use %s", redactURL(raw), why, urlForms)
	}
	switch {
	case strings.ContainsAny(p, "?#"):
		return "", bad("query and fragment are not allowed")
	case strings.HasPrefix(p, "/"), strings.HasPrefix(p, "./"), strings.HasPrefix(p, "../"), p == ".", p == "..":
	case p == "":
		return "", bad("no directory")
	default:
		return "", bad("a file URL needs an absolute path (three slashes) or one starting with ./")
	}
	return p, nil
}

func parseS3URL(raw string) (bucket, prefix string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("storage: STORAGE_URL %s: %s; use %s", redactURL(raw), why, urlForms)
	}
	u, perr := url.Parse(raw)
	if perr != nil {
		return "", "", bad("not a URL")
	}
	if u.User != nil {
		return "", "", bad("credentials do not belong in the URL; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return "", "", bad("port, query and fragment are not allowed; set S3_ENDPOINT for a custom server")
	}
	bucket = u.Host
	if err := validBucket(bucket); err != nil {
		return "", "", bad(err.Error())
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if why := keyProblem(prefix); why != "" {
			return "", "", bad("bad prefix: " + why)
		}
	}
	return bucket, prefix, nil
}

func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("the bucket name must be 3 to 63 characters")
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return errors.New("the bucket name may hold only lowercase letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}

// maxKeyLen is S3's limit on object keys, in bytes.
const maxKeyLen = 1024

// validKey accepts relative slash-separated paths: no leading or trailing slash, no empty, "."
// or ".." segments, no segment starting with "." (those names are kept for temp files), no
// backslashes or control characters.
func validKey(key string) error {
	if why := keyProblem(key); why != "" {
		return fmt.Errorf("storage: invalid key %q: %s", key, why)
	}
	return nil
}

// validPrefix accepts "" (everything) or the start of a valid key.
func validPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	probe := prefix
	if strings.HasSuffix(probe, "/") {
		probe += "x"
	}
	if why := keyProblem(probe); why != "" {
		return fmt.Errorf("storage: invalid key prefix %q: %s", prefix, why)
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > maxKeyLen:
		return "longer than 1024 bytes"
	case !utf8.ValidString(key):
		return "not UTF-8"
	case strings.HasPrefix(key, "/"):
		return "must be relative (no leading '/')"
	case strings.ContainsRune(key, '\\'):
		return "backslashes are not allowed"
	case hasControl(key):
		return "control characters are not allowed"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return "empty path segment"
		case seg == "." || seg == "..":
			return "'.' and '..' segments are not allowed"
		case strings.HasPrefix(seg, "."):
			return "segments must not start with '.'"
		}
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// validFilename accepts a download filename: a single non-empty name without path separators,
// quotes or control characters.
func validFilename(name string) error {
	why := ""
	switch {
	case name == "" || name == "." || name == "..":
		why = "empty"
	case len(name) > 255:
		why = "longer than 255 bytes"
	case !utf8.ValidString(name):
		why = "not UTF-8"
	case strings.ContainsAny(name, `/\"`):
		why = `'/', '\' and '"' are not allowed`
	case hasControl(name):
		why = "control characters are not allowed"
	default:
		return nil
	}
	return fmt.Errorf("storage: invalid filename %q: %s", name, why)
}

// maxLinkLifetime is the longest a download link may live: SigV4's limit for presigned URLs.
const maxLinkLifetime = 7 * 24 * time.Hour

func checkExpiry(expires time.Time) error {
	d := time.Until(expires)
	switch {
	case d < time.Second:
		return fmt.Errorf("storage: download link expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	case d > maxLinkLifetime:
		return fmt.Errorf("storage: download link expiry %s is more than 7 days away", expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// ContentType returns the media type served for a file name, from its extension.
func ContentType(filename string) string {
	switch strings.ToLower(path.Ext(filename)) {
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".txt", ".log":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	case ".jsonl", ".ndjson":
		return "application/x-ndjson"
	case ".gz":
		return "application/gzip"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case ".parquet":
		return "application/vnd.apache.parquet"
	case ".age":
		return "application/vnd.age"
	default: // .dump and anything else
		return "application/octet-stream"
	}
}

// ContentDisposition returns an attachment Content-Disposition naming filename (RFC 6266): an
// ASCII fallback in filename= and the exact UTF-8 name in filename*= (RFC 5987).
func ContentDisposition(filename string) string {
	var ascii, enc strings.Builder
	for _, r := range filename {
		switch {
		case r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '/':
			ascii.WriteByte('_')
		default:
			ascii.WriteRune(r)
		}
	}
	for _, b := range []byte(filename) {
		if isAttrChar(b) {
			enc.WriteByte(b)
		} else {
			fmt.Fprintf(&enc, "%%%02X", b)
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + enc.String()
}

// isAttrChar reports RFC 5987 attr-char: bytes that need no percent-encoding.
func isAttrChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}
