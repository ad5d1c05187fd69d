package export

import (
	"context"
	"slices"
	"testing"
)

// memDirectory is a Directory over fixed lists.
type memDirectory struct {
	users []HubUser
	keys  []HubKey
}

func (d memDirectory) Users(_ context.Context, id *int64) ([]HubUser, error) {
	var out []HubUser
	for _, u := range d.users {
		if id == nil || u.ID == *id {
			out = append(out, u)
		}
	}
	return out, nil
}

func (d memDirectory) Keys(_ context.Context, userID *int64) ([]HubKey, error) {
	var out []HubKey
	for _, k := range d.keys {
		if userID == nil || k.UserID == *userID {
			out = append(out, k)
		}
	}
	return out, nil
}

func (memDirectory) Providers(context.Context) ([]HubProvider, error) {
	return []HubProvider{{ID: 1, Name: "Anthropic"}}, nil
}

func (memDirectory) Endpoints(context.Context) ([]HubEndpoint, error) { return nil, nil }

func TestLookups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &Lookups{Dir: memDirectory{
		users: []HubUser{{ID: 1, Name: "root", Admin: true}, {ID: 2, Name: "alice"}, {ID: 3, Name: "bob"}},
		keys:  []HubKey{{ID: 1, UserID: 1}, {ID: 2, UserID: 2}, {ID: 3, UserID: 3}, {ID: 4, UserID: 2}},
	}}
	ids := func(n int, f func(int) int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	bob := int64(3)
	for _, c := range []struct {
		name            string
		p               Principal
		keysOf          *int64
		wantUsers, keys []int64
	}{
		{"admin token", AdminToken(), nil, []int64{1, 2, 3}, []int64{1, 2, 3, 4}},
		{"admin, one user's keys", usageAdmin, &bob, []int64{1, 2, 3}, []int64{3}},
		{"user", usageUser, nil, []int64{2}, []int64{2, 4}},
		{"user asking for another's keys gets their own", usageUser, &bob, []int64{2}, []int64{2, 4}},
	} {
		users, err := l.Users(ctx, c.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(len(users), func(i int) int64 { return users[i].ID }); !slices.Equal(got, c.wantUsers) {
			t.Errorf("%s: users %v, want %v", c.name, got, c.wantUsers)
		}
		keys, err := l.Keys(ctx, c.p, c.keysOf)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(len(keys), func(i int) int64 { return keys[i].ID }); !slices.Equal(got, c.keys) {
			t.Errorf("%s: keys %v, want %v", c.name, got, c.keys)
		}
	}

	if _, err := l.Providers(ctx, usageUser); KindOf(err) != KindForbidden {
		t.Errorf("user's provider list: %v, want forbidden", err)
	}
	if _, err := l.Endpoints(ctx, usageUser); KindOf(err) != KindForbidden {
		t.Errorf("user's endpoint list: %v, want forbidden", err)
	}
	if ps, err := l.Providers(ctx, usageAdmin); err != nil || len(ps) != 1 {
		t.Errorf("admin's provider list: %v %v", ps, err)
	}
	// An empty list is [] in JSON, never null.
	if es, err := l.Endpoints(ctx, usageAdmin); err != nil || es == nil {
		t.Errorf("admin's endpoint list: %#v %v", es, err)
	}
	if ks, err := l.Keys(ctx, usageAdmin, new(int64(99))); err != nil || ks == nil {
		t.Errorf("keys of a user without any: %#v %v", ks, err)
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	s := &Service{Registry: NewRegistry(UsageLogSpec(), ProbeLogSpec())}
	if me := s.Me(usageUser); !slices.Equal(me.ExportTypes, []string{"usage_logs"}) || me.Admin || me.UserID != 2 {
		t.Errorf("user: %+v", me)
	}
	me := s.Me(AdminToken())
	if !slices.Equal(me.ExportTypes, []string{"probe_logs", "usage_logs"}) || !me.Admin || me.UserID != AdminTokenUserID || me.KeyName != "ADMIN_TOKEN" {
		t.Errorf("admin token: %+v", me)
	}
}
