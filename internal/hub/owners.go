package hub

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

var _ export.Owners = (*DB)(nil)

// OwnerStates implements export.Owners: each user's role and whether CCH
// still counts them as a valid user (not deleted, enabled, not expired:
// the user half of hub-facts §6). A user the hub does not know is deleted.
func (d *DB) OwnerStates(ctx context.Context, userIDs []int64) (map[int64]export.OwnerState, error) {
	out := make(map[int64]export.OwnerState, len(userIDs))
	var ids []int64
	for _, id := range userIDs {
		if id == export.AdminTokenUserID {
			out[id] = export.OwnerState{Admin: true}
		} else if !slices.Contains(ids, id) {
			ids = append(ids, id)
			out[id] = export.OwnerState{Inactive: "deleted"}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := d.pool.Query(ctx, `
		SELECT id, COALESCE(role = 'admin', false), deleted_at IS NOT NULL, COALESCE(is_enabled, false),
			expires_at IS NOT NULL AND expires_at <= now()
		FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("hub: owner states: %w", err)
	}
	var (
		id                               int64
		admin, deleted, enabled, expired bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &admin, &deleted, &enabled, &expired}, func() error {
		st := export.OwnerState{Admin: admin}
		switch {
		case deleted:
			st = export.OwnerState{Inactive: "deleted"}
		case !enabled:
			st = export.OwnerState{Inactive: "disabled"}
		case expired:
			st = export.OwnerState{Inactive: "expired"}
		}
		out[id] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: owner states: %w", err)
	}
	return out, nil
}
