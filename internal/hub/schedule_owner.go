package hub

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgretry"
)

// ScheduleOwner implements export.OwnerChecker: the principal of user userID presenting key
// keyID, by the rules a request's key is checked by (hub-facts §6), so a schedule stops when
// its owner could no longer make the export themselves. The error names what stopped it.
func (d *DB) ScheduleOwner(ctx context.Context, userID, keyID int64) (export.Principal, error) {
	var (
		p                       export.Principal
		keyID2, keyUser         *int64
		keyName                 *string
		keyEnabled              *bool
		userEnabled             bool
		keyDeleted, userDeleted *time.Time
		keyExpires, userExpires *time.Time
		now                     time.Time
	)
	err := pgretry.Read(ctx, d.pool, func() error {
		return d.pool.QueryRow(ctx, `SELECT k.id, k.name, k.user_id, k.deleted_at, COALESCE(k.is_enabled, false), k.expires_at,
				u.id, u.name, COALESCE(u.role = 'admin', false), u.deleted_at, COALESCE(u.is_enabled, false), u.expires_at, now()
			FROM users u LEFT JOIN keys k ON k.id = $2
			WHERE u.id = $1`, userID, keyID).Scan(&keyID2, &keyName, &keyUser, &keyDeleted, &keyEnabled, &keyExpires,
			&p.UserID, &p.UserName, &p.Admin, &userDeleted, &userEnabled, &userExpires, &now)
	})
	inactive := func(format string, args ...any) (export.Principal, error) {
		return export.Principal{}, export.Errorf(export.KindForbidden, export.ErrOwnerInactive, format, args...)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return inactive("the schedule's owner, user #%d, no longer exists", userID)
	case err != nil:
		return export.Principal{}, &export.Error{Kind: export.KindUnavailable, Code: "hub_unavailable",
			Message: "the hub's database cannot be reached to check the schedule's owner", Err: err}
	case userDeleted != nil:
		return inactive("the schedule's owner, user #%d (%s), was deleted", userID, p.UserName)
	case !userEnabled:
		return inactive("the schedule's owner, user #%d (%s), is disabled", userID, p.UserName)
	case userExpires != nil && !userExpires.After(now):
		return inactive("the schedule's owner, user #%d (%s), expired", userID, p.UserName)
	case keyID2 == nil:
		return inactive("the API key #%d that made the schedule no longer exists", keyID)
	case *keyUser != userID:
		return inactive("the API key #%d that made the schedule no longer belongs to its owner", keyID)
	case keyDeleted != nil:
		return inactive("the API key #%d (%s) that made the schedule was deleted", keyID, *keyName)
	case !*keyEnabled:
		return inactive("the API key #%d (%s) that made the schedule is disabled", keyID, *keyName)
	case keyExpires != nil && !keyExpires.After(now):
		return inactive("the API key #%d (%s) that made the schedule expired", keyID, *keyName)
	}
	p.KeyID, p.KeyName = *keyID2, *keyName
	return p, nil
}
