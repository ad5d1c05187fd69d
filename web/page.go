package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

// The web page: plain HTML, CSS and JavaScript modules, embedded so the
// binary serves them with no build step and nothing fetched from elsewhere.
//
//go:embed ui
var pageFiles embed.FS

// pageCSP allows the page's own files and its calls to its own API, and
// nothing else: no inline script or style, no other origin, no framing.
const pageCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

type pageAsset struct {
	body        []byte
	etag        string
	contentType string
}

// pageAssets are the files under ui/, by name relative to it, read once.
var pageAssets = func() map[string]pageAsset {
	assets := map[string]pageAsset{}
	err := fs.WalkDir(pageFiles, "ui", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := pageFiles.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[strings.TrimPrefix(name, "ui/")] = pageAsset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		panic("web: read the embedded page: " + err.Error())
	}
	return assets
}()

// pageRoutes serves the page at / and its files under /ui/. Neither needs
// a token: the page signs in by calling the API.
func (h *handler) pageRoutes(r gin.IRouter) {
	r.GET("/", func(c *gin.Context) { h.serveAsset(c, "index.html") })
	r.GET("/ui/*path", func(c *gin.Context) { h.serveAsset(c, strings.TrimPrefix(c.Param("path"), "/")) })
}

func (h *handler) serveAsset(c *gin.Context, name string) {
	a, ok := pageAssets[name]
	if !ok {
		h.fail(c, export.Errorf(export.KindNotFound, "route_not_found", "no page file %s", c.Request.URL.Path))
		return
	}
	hd := c.Writer.Header()
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	// Revalidated each time (cheap, by ETag), so an upgrade shows at once.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(a.body))
}
