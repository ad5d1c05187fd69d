package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// Handler serves download links: it checks the signature and expiry, then serves the file with
// Range support. Mount it at FilesPath (the full request path is expected; a handler behind
// http.StripPrefix(FilesPath, ...) works too). Only GET and HEAD; a HEAD is checked against the
// GET signature.
func (l *Local) Handler() http.Handler { return http.HandlerFunc(l.serveFile) }

func (l *Local) serveFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "download links accept only GET and HEAD")
		return
	}
	key := strings.TrimPrefix(r.URL.Path, FilesPath)
	if key == r.URL.Path {
		key = strings.TrimPrefix(key, "/")
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
