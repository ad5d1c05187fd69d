package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
)

// The authorization matrix: every route of web/openapi.json, called by
// every kind of caller, gets the status its rule says. A route without a
// rule fails the test, so a new route cannot ship without deciding who may
// call it.

// matrixCaller is one kind of caller and the token it presents ("" sends
// none).
type matrixCaller struct{ name, token string }

var matrixCallers = []matrixCaller{
	{"none", ""},
	{"garbage", "sk-garbage-0000-not-a-key"},
	{"admin_token", adminToken},
	{"admin_key", seed.AdminKey}, // an admin user's API key
	{"user_a", seed.UserKey},     // owns the user objects below
	{"user_b", seed.FutureKey},   // another valid user
	{"disabled_key", seed.DisabledKey},
	{"expired_key", seed.ExpiredKey},
	{"deleted_key", seed.DeletedKey},
	{"deleted_user_key", seed.DeletedUserKey},
	{"disabled_user_key", seed.DisabledUserKey},
	{"expired_user_key", seed.ExpiredUserKey},
}

// Callers whose credential is not valid: 401 on every authenticated route.
var invalidCallers = map[string]bool{"none": true, "garbage": true, "disabled_key": true, "expired_key": true,
	"deleted_key": true, "deleted_user_key": true, "disabled_user_key": true, "expired_user_key": true}

// matrixRequest is what one cell sends: the route's path with its
// parameters filled, and a body (nil for none).
type matrixRequest struct {
	path string
	body any
}

// matrixRule says who gets which status on a route.
type matrixRule struct {
	// public: no credential is asked for; every caller gets want["any"].
	public bool
	// want is the status of admin_token, admin_key, user_a and user_b;
	// invalid callers get 401.
	want map[string]int
	// request builds the cell's request; it may create a fresh object
	// when the call would change or delete it.
	request func(m *matrix, caller string) matrixRequest
}

// Status sets used by most rules.
func everyone(status int) map[string]int {
	return map[string]int{"admin_token": status, "admin_key": status, "user_a": status, "user_b": status}
}

func adminsOnly(status int) map[string]int {
	return map[string]int{"admin_token": status, "admin_key": status, "user_a": http.StatusForbidden, "user_b": http.StatusForbidden}
}

// ownerOrAdmin: user_a's object; admins see every user's jobs.
func ownerOrAdmin(status int) map[string]int {
	return map[string]int{"admin_token": status, "admin_key": status, "user_a": status, "user_b": http.StatusNotFound}
}

// adminsSee: an administrator's object; users do not see it (404).
func adminsSee(status int) map[string]int {
	return map[string]int{"admin_token": status, "admin_key": status, "user_a": http.StatusNotFound, "user_b": http.StatusNotFound}
}

// ownerOnly: user_a's webhook endpoint; endpoints belong to the principal
// that made them, whoever else asks (admins included) gets 404.
func ownerOnly(status int) map[string]int {
	return map[string]int{"admin_token": http.StatusNotFound, "admin_key": http.StatusNotFound, "user_a": status, "user_b": http.StatusNotFound}
}

func fixed(path string, body any) func(*matrix, string) matrixRequest {
	return func(*matrix, string) matrixRequest { return matrixRequest{path: path, body: body} }
}

// matrixRules is keyed by "METHOD /path" as web/openapi.json writes it.
var matrixRules = map[string]matrixRule{
	"GET /healthz":              {public: true, want: map[string]int{"any": 200}, request: fixed("/healthz", nil)},
	"GET /readyz":               {public: true, want: map[string]int{"any": 200}, request: fixed("/readyz", nil)},
	"GET /metrics":              {public: true, want: map[string]int{"any": 200}, request: fixed("/metrics", nil)},
	"GET /":                     {public: true, want: map[string]int{"any": 200}, request: fixed("/", nil)},
	"GET /ui/{path}":            {public: true, want: map[string]int{"any": 200}, request: fixed("/ui/app.js", nil)},
	"GET /api/v1/openapi.json":  {public: true, want: map[string]int{"any": 200}, request: fixed("/api/v1/openapi.json", nil)},
	"GET /api/v1/files/{path}":  {public: true, want: map[string]int{"any": 200}, request: func(m *matrix, _ string) matrixRequest { return matrixRequest{path: m.fileLink} }},
	"HEAD /api/v1/files/{path}": {public: true, want: map[string]int{"any": 200}, request: func(m *matrix, _ string) matrixRequest { return matrixRequest{path: m.fileLink} }},
	// The link's signature is the only credential: an altered one is
	// refused whoever presents it, the admin token included.
	"PUT /api/v1/files/{path}": {public: true, want: map[string]int{"any": 403}, request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: m.alteredUploadLink, body: "PGDMP"}
	}},

	"GET /api/v1/me":            {want: everyone(200), request: fixed("/api/v1/me", nil)},
	"GET /api/v1/hub/users":     {want: everyone(200), request: fixed("/api/v1/hub/users", nil)},
	"GET /api/v1/hub/keys":      {want: everyone(200), request: fixed("/api/v1/hub/keys", nil)},
	"GET /api/v1/hub/providers": {want: adminsOnly(200), request: fixed("/api/v1/hub/providers", nil)},
	"GET /api/v1/hub/endpoints": {want: adminsOnly(200), request: fixed("/api/v1/hub/endpoints", nil)},
	"GET /api/v1/audit":         {want: adminsOnly(200), request: fixed("/api/v1/audit", nil)},
	"POST /api/v1/restores/uploads": {want: adminsOnly(201), request: fixed("/api/v1/restores/uploads",
		map[string]any{"size_bytes": 5, "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"})},

	// An admin-only export type: users get 403, not a job.
	"POST /api/v1/exports": {want: adminsOnly(202), request: fixed("/api/v1/exports",
		map[string]any{"type": "probe_logs", "params": map[string]any{"max_lines": 5}})},
	"GET /api/v1/exports":      {want: everyone(200), request: fixed("/api/v1/exports", nil)},
	"GET /api/v1/exports/{id}": {want: ownerOrAdmin(200), request: func(m *matrix, _ string) matrixRequest { return matrixRequest{path: "/api/v1/exports/" + m.jobA} }},
	"GET /api/v1/exports/{id}/events": {want: ownerOrAdmin(200), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/exports/" + m.jobA + "/events"}
	}},
	"GET /api/v1/exports/{id}/download": {want: ownerOrAdmin(302), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/exports/" + m.jobA + "/download"}
	}},
	"DELETE /api/v1/exports/{id}": {want: ownerOrAdmin(200), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/exports/" + m.freshJobA()}
	}},

	"POST /api/v1/webhooks": {want: everyone(201), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks", body: map[string]any{"url": m.receiver}}
	}},
	"GET /api/v1/webhooks":      {want: everyone(200), request: fixed("/api/v1/webhooks", nil)},
	"GET /api/v1/webhooks/{id}": {want: ownerOnly(200), request: func(m *matrix, _ string) matrixRequest { return matrixRequest{path: "/api/v1/webhooks/" + m.hookA} }},
	"PATCH /api/v1/webhooks/{id}": {want: ownerOnly(200), request: func(m *matrix, caller string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.hookA, body: map[string]any{"description": "patched by " + caller}}
	}},
	"DELETE /api/v1/webhooks/{id}": {want: ownerOnly(204), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.freshHookA()}
	}},
	"POST /api/v1/webhooks/{id}/rotate": {want: ownerOnly(200), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.hookA + "/rotate"}
	}},
	"POST /api/v1/webhooks/{id}/test": {want: ownerOnly(202), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.hookA + "/test"}
	}},
	"GET /api/v1/webhooks/{id}/deliveries": {want: ownerOnly(200), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.hookA + "/deliveries"}
	}},
	"POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/resend": {want: ownerOnly(202), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/webhooks/" + m.hookA + "/deliveries/" + m.deliveryA + "/resend"}
	}},

	"POST /api/v1/schedules": {want: adminsOnly(201), request: func(_ *matrix, caller string) matrixRequest {
		return matrixRequest{path: "/api/v1/schedules", body: map[string]any{"name": "by " + caller, "cron": "0 3 * * *", "enabled": false}}
	}},
	// Users list their own schedules; an administrator's backup schedule is
	// not theirs to see.
	"GET /api/v1/schedules":      {want: everyone(200), request: fixed("/api/v1/schedules", nil)},
	"GET /api/v1/schedules/{id}": {want: adminsSee(200), request: func(m *matrix, _ string) matrixRequest { return matrixRequest{path: "/api/v1/schedules/" + m.schedule} }},
	"PATCH /api/v1/schedules/{id}": {want: adminsSee(200), request: func(m *matrix, caller string) matrixRequest {
		return matrixRequest{path: "/api/v1/schedules/" + m.schedule, body: map[string]any{"name": "patched by " + caller}}
	}},
	"DELETE /api/v1/schedules/{id}": {want: adminsSee(204), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/schedules/" + m.freshSchedule()}
	}},
	"GET /api/v1/schedules/health": {want: adminsOnly(200), request: fixed("/api/v1/schedules/health", nil)},
	"GET /api/v1/schedules/{id}/retention": {want: adminsSee(200), request: func(m *matrix, _ string) matrixRequest {
		return matrixRequest{path: "/api/v1/schedules/" + m.schedule + "/retention?keep_last=2"}
	}},
}

// matrix holds the stack and the objects the cells call on.
type matrix struct {
	s                 *stack
	client            *http.Client
	receiver          string // a webhook URL that answers 204
	jobA              string // user_a's succeeded usage export
	fileLink          string // the signed link to jobA's file
	alteredUploadLink string // a restore upload link with its signature altered
	hookA             string // user_a's webhook endpoint
	deliveryA         string // a sent delivery of hookA
	schedule          string // an admin's backup schedule
}

func (m *matrix) call(method, path, token string, body any) (int, []byte) {
	m.s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, m.s.base+path, rd)
	if err != nil {
		m.s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.client.Do(req)
	if err != nil {
		m.s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must calls and decodes a 2xx answer into v.
func (m *matrix) must(method, path, token string, body, v any) {
	m.s.t.Helper()
	status, b := m.call(method, path, token, body)
	if status/100 != 2 {
		m.s.t.Fatalf("setup: %s %s: status %d: %s", method, path, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			m.s.t.Fatalf("setup: %s %s: %v: %s", method, path, err, b)
		}
	}
}

func (m *matrix) freshJobA() string {
	var j job
	m.must("POST", "/api/v1/exports", seed.UserKey, map[string]any{"type": "usage_logs",
		"params": map[string]any{"start_time": "2026-01-20T00:00:00Z", "end_time": "2026-01-21T00:00:00Z"}}, &j)
	return j.ID
}

func (m *matrix) freshHookA() string {
	var h hook
	m.must("POST", "/api/v1/webhooks", seed.UserKey, map[string]any{"url": m.receiver}, &h)
	return h.ID
}

func (m *matrix) freshSchedule() string {
	var sch struct {
		ID string `json:"id"`
	}
	m.must("POST", "/api/v1/schedules", adminToken, map[string]any{"name": "to delete", "cron": "0 4 * * *", "enabled": false}, &sch)
	return sch.ID
}

// openAPIRoutes lists "METHOD /path" for every operation of the document.
func openAPIRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../web/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("web/openapi.json: %v", err)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(routes)
	return routes
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	routes := openAPIRoutes(t)
	documented := map[string]bool{}
	for _, r := range routes {
		documented[r] = true
		if _, ok := matrixRules[r]; !ok {
			t.Errorf("%s is in web/openapi.json but has no authorization rule: add one to matrixRules in cmd/hubexport/authz_matrix_e2e_test.go saying which status each kind of caller gets", r)
		}
	}
	for r := range matrixRules {
		if !documented[r] {
			t.Errorf("matrixRules has a rule for %s, which web/openapi.json does not document: document the route or remove the rule", r)
		}
	}
	if t.Failed() {
		return
	}

	s := newStack(t, withPrivateWebhooks(),
		// Hundreds of refused credentials from one address are the point here.
		withEnv("AUTH_FAILURES_PER_MINUTE", "0"),
		withEnv("MAX_ACTIVE_JOBS_PER_PRINCIPAL", "100"))
	s.start("serve")
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	m := &matrix{s: s, receiver: rcv.URL + "/hook", client: &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}

	// user_a's finished export, and the signed link to its file.
	m.jobA = m.freshJobA()
	if j := s.wait(seed.UserKey, m.jobA, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("user_a's export ended %s: %+v", j.Status, j.Error)
	}
	var link struct {
		URL string `json:"url"`
	}
	m.must("GET", "/api/v1/exports/"+m.jobA+"/download?redirect=false", seed.UserKey, nil, &link)
	u, err := url.Parse(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	m.fileLink = u.RequestURI()

	var ticket struct {
		URL string `json:"url"`
	}
	m.must("POST", "/api/v1/restores/uploads", adminToken, matrixRules["POST /api/v1/restores/uploads"].request(m, "setup").body, &ticket)
	if u, err = url.Parse(ticket.URL); err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range q {
		if strings.Contains(strings.ToLower(k), "sig") {
			q.Set(k, strings.Repeat("0", len(v[0])))
		}
	}
	u.RawQuery = q.Encode()
	m.alteredUploadLink = u.RequestURI()
	if m.alteredUploadLink == ticket.URL {
		t.Fatalf("upload link %s has no signature to alter", ticket.URL)
	}

	// user_a's webhook endpoint with one sent delivery.
	m.hookA = m.freshHookA()
	m.must("POST", "/api/v1/webhooks/"+m.hookA+"/test", seed.UserKey, nil, nil)
	m.deliveryA = s.waitDelivery(seed.UserKey, m.hookA, 1, 30*time.Second).ID

	var sch struct {
		ID string `json:"id"`
	}
	m.must("POST", "/api/v1/schedules", adminToken, map[string]any{"name": "matrix", "cron": "0 3 * * *", "enabled": false}, &sch)
	m.schedule = sch.ID

	cells := 0
	start := time.Now()
	for _, route := range routes {
		rule := matrixRules[route]
		method, _, _ := strings.Cut(route, " ")
		for _, c := range matrixCallers {
			want, ok := 0, false
			switch {
			case rule.public:
				want, ok = rule.want["any"], true
			case invalidCallers[c.name]:
				want, ok = http.StatusUnauthorized, true
			default:
				want, ok = rule.want[c.name]
			}
			if !ok {
				t.Errorf("%s: the rule gives no status for %s", route, c.name)
				continue
			}
			req := rule.request(m, c.name)
			got, body := m.call(method, req.path, c.token, req.body)
			cells++
			if got != want {
				t.Errorf("%s as %s (%s %s): status %d, want %d: %.300s", route, c.name, method, req.path, got, want, body)
				continue
			}
			if want >= 400 && method != "HEAD" {
				var e struct {
					Error struct {
						Code string `json:"code"`
					} `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" ||
					(want == http.StatusUnauthorized && e.Error.Code != "unauthenticated") {
					t.Errorf("%s as %s: %d with body %.300s, want a JSON error (unauthenticated for a 401)", route, c.name, got, body)
				}
			}
			// Whatever user_b may read, nothing of user_a's is in it.
			if c.name == "user_b" && !rule.public {
				for _, id := range []string{m.jobA, m.hookA, m.deliveryA} {
					if strings.Contains(string(body), id) {
						t.Errorf("%s as user_b: the answer names user_a's %s: %.300s", route, id, body)
					}
				}
			}
		}
	}
	t.Logf("%d routes × %d callers: %d cells in %s", len(routes), len(matrixCallers), cells, time.Since(start).Round(time.Millisecond))
}
