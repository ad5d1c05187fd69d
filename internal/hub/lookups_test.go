package hub_test

import (
	"testing"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/seed"
)

func TestLookups(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	ctx := t.Context()

	users, err := db.Users(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]export.HubUser{}
	for i, u := range users {
		if i > 0 && users[i-1].ID >= u.ID {
			t.Errorf("users not ordered by id: %d after %d", u.ID, users[i-1].ID)
		}
		byID[u.ID] = u
	}
	if len(users) != 14 || !byID[seed.AdminUserID].Admin || byID[seed.UserID].Admin || byID[seed.UserID].Name != "alice" ||
		byID[11].Enabled || !byID[13].Deleted || byID[12].Expires == nil || byID[2].Deleted {
		t.Errorf("users %+v", users)
	}
	uid := int64(seed.UserID)
	if one, err := db.Users(ctx, &uid); err != nil || len(one) != 1 || one[0] != byID[seed.UserID] {
		t.Errorf("Users(alice) = %+v, %v", one, err)
	}

	keys, err := db.Keys(ctx, &uid)
	if err != nil {
		t.Fatal(err)
	}
	want := []export.HubKey{
		{ID: 2, UserID: 2, Name: "alice laptop 💻", Enabled: true},
		{ID: 3, UserID: 2, Name: "alice old (disabled)"},
		{ID: 4, UserID: 2, Name: "alice expired", Enabled: true},
		{ID: 5, UserID: 2, Name: "alice deleted", Enabled: true, Deleted: true},
	}
	if len(keys) != len(want) {
		t.Fatalf("alice's keys %+v", keys)
	}
	for i, k := range keys {
		if k.Expires == nil != (k.ID != 4) {
			t.Errorf("key %d expires %v", k.ID, k.Expires)
		}
		k.Expires = nil
		if k != want[i] {
			t.Errorf("key %d = %+v, want %+v", i, k, want[i])
		}
	}
	all, err := db.Keys(ctx, nil)
	if err != nil || len(all) <= 11 || all[0].ID != 1 {
		t.Errorf("all keys: %d, %v", len(all), err)
	}

	providers, err := db.Providers(ctx)
	if err != nil || len(providers) != 8 || providers[0] != (export.HubProvider{ID: 1, Name: "Anthropic Official", Type: "claude", Enabled: true}) || !providers[5].Deleted {
		t.Errorf("providers %+v, %v", providers, err)
	}

	endpoints, err := db.Endpoints(ctx)
	if err != nil || len(endpoints) != 10 {
		t.Fatalf("endpoints %+v, %v", endpoints, err)
	}
	if e := endpoints[1]; e != (export.HubEndpoint{ID: 2, Vendor: "中转站 Relay", Type: "claude", URL: "https://relay.example.cn/claude", Label: "中转 A", Enabled: true}) {
		t.Errorf("endpoint 2 = %+v", e)
	}
	if endpoints[6].Enabled || !endpoints[7].Deleted || endpoints[9].ID != endpointB {
		t.Errorf("endpoints %+v", endpoints)
	}
}
