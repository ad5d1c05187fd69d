package hub_test

import (
	"testing"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/seed"
)

// Endpoint owners are judged by the hub's users table now: role, and CCH's
// user validity (deleted, disabled, expired); the admin token is an admin.
func TestOwnerStates(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	want := map[int64]export.OwnerState{
		export.AdminTokenUserID: {Admin: true},
		seed.AdminUserID:        {Admin: true},
		seed.UserID:             {},
		11:                      {Inactive: "disabled"},
		12:                      {Inactive: "expired"},
		13:                      {Inactive: "deleted"},
		999:                     {Inactive: "deleted"}, // unknown to the hub
		14:                      {},                    // expires a century from now
	}
	var ids []int64
	for id := range want {
		ids = append(ids, id, id)
	}
	got, err := db.OwnerStates(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d states, want %d: %+v", len(got), len(want), got)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("user %d: %+v, want %+v", id, got[id], w)
		}
	}
}
