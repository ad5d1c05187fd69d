package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// DownloadURL returns <PublicURL>/api/v1/files/<key>?expires=<unix>&filename=<name>&signature=<hex>,
// an HMAC-SHA256 over the method, key, filename and expiry.
func (l *Local) DownloadURL(ctx context.Context, key, filename string, expires time.Time) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	if err := validFilename(filename); err != nil {
		return "", err
	}
	if err := checkExpiry(expires); err != nil {
		return "", err
	}
	exp := expires.Unix()
	q := url.Values{
		"expires":   {strconv.FormatInt(exp, 10)},
		"filename":  {filename},
		"signature": {hex.EncodeToString(l.sign(http.MethodGet, key, filename, exp))},
	}
	return l.publicURL + FilesPath + escapeKey(key) + "?" + q.Encode(), nil
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// sign computes the link signature. Keys and filenames hold no control characters, so the
// newline-separated message is unambiguous.
func (l *Local) sign(method, key, filename string, expires int64) []byte {
	m := hmac.New(sha256.New, l.key)
	fmt.Fprintf(m, "hubexport-file-link-v1\n%s\n%s\n%s\n%d", method, key, filename, expires)
	return m.Sum(nil)
}

// UploadsPrefix is the only folder local upload links write to.
const UploadsPrefix = "uploads/"

// UploadURL returns <PublicURL>/api/v1/files/<key>?expires=<unix>&size=<bytes>&sha256=<hex>&signature=<hex>,
// to which a client PUTs the object: an HMAC-SHA256 over PUT, the key, the size, the digest and
// the expiry. The link takes one body of exactly that size and digest, once. Only keys below
// UploadsPrefix can be signed, so an upload link can never overwrite an artifact. No header is
// required.
func (l *Local) UploadURL(ctx context.Context, u export.UploadSpec) (export.SignedUpload, error) {
	if err := validKey(u.Key); err != nil {
		return export.SignedUpload{}, err
	}
	if !strings.HasPrefix(u.Key, UploadsPrefix) {
		return export.SignedUpload{}, fmt.Errorf("storage: upload links write only below %s, not %q", UploadsPrefix, u.Key)
	}
	if err := checkUploadSpec(u); err != nil {
		return export.SignedUpload{}, err
	}
	exp := u.Expires.Unix()
	q := url.Values{
		"expires":   {strconv.FormatInt(exp, 10)},
		"size":      {strconv.FormatInt(u.SizeBytes, 10)},
		"sha256":    {u.SHA256},
		"signature": {hex.EncodeToString(l.signUpload(u.Key, u.SizeBytes, u.SHA256, exp))},
	}
	return export.SignedUpload{URL: l.publicURL + FilesPath + escapeKey(u.Key) + "?" + q.Encode(), Headers: map[string]string{}}, nil
}

func checkUploadSpec(u export.UploadSpec) error {
	if u.SizeBytes < 1 {
		return fmt.Errorf("storage: upload size %d: must be at least 1 byte", u.SizeBytes)
	}
	if !export.ValidSHA256(u.SHA256) {
		return fmt.Errorf("storage: upload digest %q: want 64 lowercase hex digits", u.SHA256)
	}
	return checkExpiry(u.Expires)
}

// signUpload computes an upload link's signature; its message differs from every download
// link's in its first line.
func (l *Local) signUpload(key string, size int64, sum string, expires int64) []byte {
	m := hmac.New(sha256.New, l.key)
	fmt.Fprintf(m, "hubexport-upload-link-v2\n%s\n%s\n%d\n%s\n%d", http.MethodPut, key, size, sum, expires)
	return m.Sum(nil)
}

// Handler serves signed links: GET and HEAD download (a HEAD is checked against the GET
// signature) with Range support; PUT uploads to a key below UploadsPrefix. Mount it at
// FilesPath (the full request path is expected; a handler behind http.StripPrefix(FilesPath,
// ...) works too).
func (l *Local) Handler() http.Handler { return http.HandlerFunc(l.serveFile) }

func (l *Local) serveFile(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, FilesPath)
	if key == r.URL.Path {
		key = strings.TrimPrefix(key, "/")
	}
	if r.Method == http.MethodPut {
		l.receiveFile(w, r, key)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "signed links accept only GET and HEAD (downloads) and PUT (uploads)")
		return
	}
	q := r.URL.Query()
	filename := q.Get("filename")
	sig, sigErr := hex.DecodeString(q.Get("signature"))
	exp, expErr := strconv.ParseInt(q.Get("expires"), 10, 64)
	if validKey(key) != nil || validFilename(filename) != nil || sigErr != nil || expErr != nil ||
		!hmac.Equal(sig, l.sign(http.MethodGet, key, filename, exp)) {
		writeError(w, http.StatusForbidden, "invalid_signature", "this download link is invalid or was altered; request a new link")
		return
	}
	if time.Now().Unix() > exp {
		writeError(w, http.StatusForbidden, "link_expired",
			fmt.Sprintf("this download link expired at %s; request a new link", time.Unix(exp, 0).UTC().Format(time.RFC3339)))
		return
	}
	f, err := l.openFile(key)
	if err != nil {
		if isNotExist(err) {
			writeError(w, http.StatusNotFound, "not_found", "the file no longer exists")
			return
		}
		writeError(w, http.StatusInternalServerError, "internal", "the file could not be read; try again later")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the file could not be read; try again later")
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType(filename))
	h.Set("Content-Disposition", ContentDisposition(filename))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// receiveFile stores a PUT to an upload link: into a temp file beside the key, hashed while it
// is written, published only if it has the size and SHA-256 the link was signed for and nothing
// is at the key yet. A broken, oversized or altered upload leaves nothing at the key, and a
// second PUT to the same link is refused with 409 upload_link_used, even while the first runs.
func (l *Local) receiveFile(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	sig, sigErr := hex.DecodeString(q.Get("signature"))
	exp, expErr := strconv.ParseInt(q.Get("expires"), 10, 64)
	size, sizeErr := strconv.ParseInt(q.Get("size"), 10, 64)
	want := q.Get("sha256")
	if validKey(key) != nil || !strings.HasPrefix(key, UploadsPrefix) || sigErr != nil || expErr != nil || sizeErr != nil ||
		size < 1 || !export.ValidSHA256(want) || !hmac.Equal(sig, l.signUpload(key, size, want, exp)) {
		writeError(w, http.StatusForbidden, "invalid_signature", "this upload link is invalid or was altered; request a new one")
		return
	}
	if time.Now().Unix() > exp {
		writeError(w, http.StatusForbidden, "link_expired",
			fmt.Sprintf("this upload link expired at %s; request a new one", time.Unix(exp, 0).UTC().Format(time.RFC3339)))
		return
	}
	used := func() {
		writeError(w, http.StatusConflict, "upload_link_used", "this upload link was already used; request a new one to upload another file")
	}
	if _, err := os.Lstat(l.path(key)); err == nil {
		used()
		return
	}
	if r.ContentLength > size {
		writeError(w, http.StatusRequestEntityTooLarge, "upload_too_large",
			fmt.Sprintf("the body is %d bytes; this link takes exactly %d bytes", r.ContentLength, size))
		return
	}
	// A dump of many gigabytes takes longer than the server's read timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	ctx := r.Context()
	up, err := l.create(ctx, key, true)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the upload could not be stored; try again later")
		return
	}
	defer up.Abort(context.WithoutCancel(ctx))
	h := sha256.New()
	// One byte more than declared is enough to know the body is too long.
	n, err := io.CopyBuffer(io.MultiWriter(up, h), io.LimitReader(r.Body, size+1), make([]byte, 256<<10))
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "upload_incomplete", "the upload did not complete ("+err.Error()+"); send the file again")
		return
	case n > size:
		writeError(w, http.StatusRequestEntityTooLarge, "upload_too_large", fmt.Sprintf("the body is over %d bytes, the size this link takes", size))
		return
	case n < size:
		writeError(w, http.StatusBadRequest, "upload_incomplete", fmt.Sprintf("the body has %d bytes, not the %d this link takes; send the whole file", n, size))
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		writeError(w, http.StatusBadRequest, "checksum_mismatch",
			fmt.Sprintf("the body has SHA-256 %s, not the %s this link takes; upload the file you declared", got, want))
		return
	}
	if err := up.Commit(ctx); err != nil {
		if errors.Is(err, errExists) {
			used()
			return
		}
		writeError(w, http.StatusBadRequest, "upload_incomplete", "the upload did not complete ("+err.Error()+"); send the file again")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"size_bytes": n, "sha256": want})
}
