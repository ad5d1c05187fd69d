package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hubexport/hubexport/internal/export"
)

// fakeDirectory is the hub of the fake principals: alice (user 1, keys 11
// and 12) and bob (user 2, key 21).
type fakeDirectory struct{}

func (fakeDirectory) Users(_ context.Context, id *int64) ([]export.HubUser, error) {
	all := []export.HubUser{{ID: 1, Name: "alice", Enabled: true}, {ID: 2, Name: "bob", Enabled: true}}
	return slices.DeleteFunc(all, func(u export.HubUser) bool { return id != nil && u.ID != *id }), nil
}

func (fakeDirectory) Keys(_ context.Context, userID *int64) ([]export.HubKey, error) {
	all := []export.HubKey{{ID: 11, UserID: 1, Name: "alice key"}, {ID: 12, UserID: 1, Name: "alice old"}, {ID: 21, UserID: 2, Name: "bob key"}}
	return slices.DeleteFunc(all, func(k export.HubKey) bool { return userID != nil && k.UserID != *userID }), nil
}

func (fakeDirectory) Providers(context.Context) ([]export.HubProvider, error) {
	return []export.HubProvider{{ID: 1, Name: "Anthropic", Type: "claude", Enabled: true}}, nil
}

func (fakeDirectory) Endpoints(context.Context) ([]export.HubEndpoint, error) { return nil, nil }

func TestMe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	me := wantJSON[export.Me](t, b.do(t, "GET", "/api/v1/me", adminToken, ""), http.StatusOK)
	if want := (export.Me{UserID: -1, Name: "Admin Token", Admin: true, KeyID: -1, KeyName: "ADMIN_TOKEN", ExportTypes: []string{"probe_logs"}}); !slices.Equal(me.ExportTypes, want.ExportTypes) || me.Name != want.Name || !me.Admin || me.KeyName != want.KeyName || me.UserID != -1 {
		t.Errorf("admin token: %+v", me)
	}
	w := b.do(t, "GET", "/api/v1/me", aliceToken, "")
	me = wantJSON[export.Me](t, w, http.StatusOK)
	if me.UserID != 1 || me.Name != "alice" || me.KeyID != 11 || me.KeyName != "alice key" || me.Admin {
		t.Errorf("alice: %+v", me)
	}
	// probe_logs is for admins: alice may ask for nothing here, and says so with [].
	if got := w.Body.String(); !strings.Contains(got, `"export_types":[]`) {
		t.Errorf("alice's export types: %s", got)
	}
	wantError(t, b.do(t, "GET", "/api/v1/me", "", ""), http.StatusUnauthorized, "unauthenticated")
}

func TestLookupRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type list[T any] struct {
		Data []T `json:"data"`
	}
	userIDs := func(token string) []int64 {
		var ids []int64
		for _, u := range wantJSON[list[export.HubUser]](t, b.do(t, "GET", "/api/v1/hub/users", token, ""), http.StatusOK).Data {
			ids = append(ids, u.ID)
		}
		return ids
	}
	keyIDs := func(token, query string) []int64 {
		var ids []int64
		for _, k := range wantJSON[list[export.HubKey]](t, b.do(t, "GET", "/api/v1/hub/keys"+query, token, ""), http.StatusOK).Data {
			ids = append(ids, k.ID)
		}
		return ids
	}
	if got := userIDs(adminToken); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("admin's users %v", got)
	}
	if got := userIDs(bobToken); !slices.Equal(got, []int64{2}) {
		t.Errorf("bob's users %v", got)
	}
	if got := keyIDs(adminToken, ""); !slices.Equal(got, []int64{11, 12, 21}) {
		t.Errorf("admin's keys %v", got)
	}
	if got := keyIDs(adminToken, "?user_id=1"); !slices.Equal(got, []int64{11, 12}) {
		t.Errorf("admin's keys of alice %v", got)
	}
	if got := keyIDs(bobToken, "?user_id=1"); !slices.Equal(got, []int64{21}) {
		t.Errorf("bob asking for alice's keys got %v, want his own", got)
	}
	wantError(t, b.do(t, "GET", "/api/v1/hub/keys?user_id=alice", adminToken, ""), http.StatusBadRequest, "invalid_request")

	wantError(t, b.do(t, "GET", "/api/v1/hub/providers", aliceToken, ""), http.StatusForbidden, "admin_only")
	wantError(t, b.do(t, "GET", "/api/v1/hub/endpoints", aliceToken, ""), http.StatusForbidden, "admin_only")
	if ps := wantJSON[list[export.HubProvider]](t, b.do(t, "GET", "/api/v1/hub/providers", adminToken, ""), http.StatusOK).Data; len(ps) != 1 {
		t.Errorf("providers %+v", ps)
	}
	w := b.do(t, "GET", "/api/v1/hub/endpoints", adminToken, "")
	if w.Code != http.StatusOK || w.Body.String() != `{"data":[]}` {
		t.Errorf("endpoints: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/api/v1/hub/users", "/api/v1/hub/keys", "/api/v1/hub/providers", "/api/v1/hub/endpoints"} {
		wantError(t, b.do(t, "GET", path, "", ""), http.StatusUnauthorized, "unauthenticated")
	}
}
