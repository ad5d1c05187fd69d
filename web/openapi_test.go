package web

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/hubexport/hubexport/internal/export"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath turns Gin's /exports/:id and /files/*path into OpenAPI's
// /exports/{id} and /files/{path}.
func openAPIPath(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// everyRoute builds the API with every optional part switched on, so every
// route it can serve is registered.
func everyRoute(t *testing.T) *gin.Engine {
	t.Helper()
	b := setup(t, func(h *handler) {
		h.files = http.NotFoundHandler()
		h.metrics = http.NotFoundHandler()
		h.webhooks = &export.Webhooks{}
		h.audit = &export.AuditLog{}
		h.schedules = &export.Schedules{}
	})
	return b.h.(*gin.Engine)
}

// The document must name every registered route (method and path), and
// nothing that is not one.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, r := range everyRoute(t).Routes() {
		path, method := openAPIPath(r.Path), strings.ToLower(r.Method)
		registered[method+" "+path] = true
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("route %s %s is not in web/openapi.json (as %s %q); document it", r.Method, r.Path, method, path)
		}
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, method+" "+path)
			}
		}
	}
	sort.Strings(documented)
	for _, op := range documented {
		if !registered[op] {
			t.Errorf("web/openapi.json documents %s, which is not a route", op)
		}
	}
}

// Every $ref points at something in the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	var root any
	if err := json.Unmarshal(openAPIDocument, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if ref, ok := c.(string); ok && k == "$ref" {
					if !resolves(root, ref) {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
}

func resolves(root any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	cur := root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPIAndMetricsNeedNoToken(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "hubexport_up 1\n")
	})
	b := setup(t, func(h *handler) { h.metrics = metrics })
	w := b.do(t, "GET", "/api/v1/openapi.json", "", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != string(openAPIDocument) {
		t.Fatalf("openapi.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	w = b.do(t, "GET", "/metrics", "", "")
	if w.Code != 200 || w.Body.String() != "hubexport_up 1\n" {
		t.Fatalf("metrics: %d %q", w.Code, w.Body)
	}
	// Without a metrics handler there is no such route.
	w = setup(t).do(t, "GET", "/metrics", "", "")
	wantError(t, w, 404, "route_not_found")
}
