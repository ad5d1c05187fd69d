package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// UploadURL returns <PublicURL>/api/v1/files/<key>?expires=<unix>&signature=<hex>, to which a
// client PUTs the object: an HMAC-SHA256 over PUT, the key and the expiry. Only keys below
// UploadsPrefix can be signed, so an upload link can never overwrite an artifact.
func (l *Local) UploadURL(ctx context.Context, key string, expires time.Time) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	if !strings.HasPrefix(key, UploadsPrefix) {
		return "", fmt.Errorf("storage: upload links write only below %s, not %q", UploadsPrefix, key)
	}
	if err := checkExpiry(expires); err != nil {
		return "", err
	}
	exp := expires.Unix()
	q := url.Values{
		"expires":   {strconv.FormatInt(exp, 10)},
		"signature": {hex.EncodeToString(l.sign(http.MethodPut, key, "", exp))},
	}
	return l.publicURL + FilesPath + escapeKey(key) + "?" + q.Encode(), nil
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

// receiveFile stores a PUT to an upload link: into a temp file beside the key, renamed into place
// once the whole body has arrived, so a broken upload leaves nothing at the key.
func (l *Local) receiveFile(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	sig, sigErr := hex.DecodeString(q.Get("signature"))
	exp, expErr := strconv.ParseInt(q.Get("expires"), 10, 64)
	if validKey(key) != nil || !strings.HasPrefix(key, UploadsPrefix) || sigErr != nil || expErr != nil ||
		!hmac.Equal(sig, l.sign(http.MethodPut, key, "", exp)) {
		writeError(w, http.StatusForbidden, "invalid_signature", "this upload link is invalid or was altered; request a new one")
		return
	}
	if time.Now().Unix() > exp {
		writeError(w, http.StatusForbidden, "link_expired",
			fmt.Sprintf("this upload link expired at %s; request a new one", time.Unix(exp, 0).UTC().Format(time.RFC3339)))
		return
	}
	// A dump of many gigabytes takes longer than the server's read timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	ctx := r.Context()
	up, err := l.Create(ctx, key, "")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the upload could not be stored; try again later")
		return
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(up, h), r.Body, make([]byte, 256<<10))
	if err == nil {
		err = up.Commit(ctx)
	}
	if err != nil {
		_ = up.Abort(context.WithoutCancel(ctx))
		writeError(w, http.StatusBadRequest, "upload_incomplete", "the upload did not complete ("+err.Error()+"); send the file again")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"size_bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
}
