package hub

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

// The lookups list soft-deleted rows too (flagged): their requests and probe logs are still in
// the hub and can be exported. They never select keys.key or providers.key.

// Users lists the hub's users by id, or only user id when id is set.
func (d *DB) Users(ctx context.Context, id *int64) ([]export.HubUser, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT id, name, COALESCE(role = 'admin', false), is_enabled, expires_at, deleted_at IS NOT NULL
		FROM users
		WHERE $1::bigint IS NULL OR id = $1
		ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("hub: list users: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (export.HubUser, error) {
		var u export.HubUser
		err := r.Scan(&u.ID, &u.Name, &u.Admin, &u.Enabled, &u.Expires, &u.Deleted)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("hub: list users: %w", err)
	}
	return list, nil
}

// Keys lists the hub's API keys by id and name, or only those of userID when it is set.
func (d *DB) Keys(ctx context.Context, userID *int64) ([]export.HubKey, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT id, user_id, name, COALESCE(is_enabled, false), expires_at, deleted_at IS NOT NULL
		FROM keys
		WHERE $1::bigint IS NULL OR user_id = $1
		ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("hub: list keys: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (export.HubKey, error) {
		var k export.HubKey
		err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Enabled, &k.Expires, &k.Deleted)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("hub: list keys: %w", err)
	}
	return list, nil
}

// Providers lists the hub's providers by id.
func (d *DB) Providers(ctx context.Context) ([]export.HubProvider, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT id, name, provider_type, is_enabled, deleted_at IS NOT NULL
		FROM providers
		ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("hub: list providers: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (export.HubProvider, error) {
		var p export.HubProvider
		err := r.Scan(&p.ID, &p.Name, &p.Type, &p.Enabled, &p.Deleted)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("hub: list providers: %w", err)
	}
	return list, nil
}

// Endpoints lists the hub's provider endpoints by id, with their vendor's name.
func (d *DB) Endpoints(ctx context.Context) ([]export.HubEndpoint, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT e.id, COALESCE(v.display_name, v.website_domain, ''), e.provider_type, e.url,
			COALESCE(e.label, ''), e.is_enabled, e.deleted_at IS NOT NULL
		FROM provider_endpoints e
		LEFT JOIN provider_vendors v ON v.id = e.vendor_id
		ORDER BY e.id`)
	if err != nil {
		return nil, fmt.Errorf("hub: list endpoints: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (export.HubEndpoint, error) {
		var e export.HubEndpoint
		err := r.Scan(&e.ID, &e.Vendor, &e.Type, &e.URL, &e.Label, &e.Enabled, &e.Deleted)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("hub: list endpoints: %w", err)
	}
	return list, nil
}

var _ export.Directory = (*DB)(nil)
