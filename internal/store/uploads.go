package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

var _ export.UploadStore = (*Store)(nil)

const uploadColumns = `id, size_bytes, sha256, user_id, key_id, actor, created_at, expires_at`

func scanUpload(row pgx.Row) (*export.RestoreUpload, error) {
	var u export.RestoreUpload
	err := row.Scan(&u.ID, &u.SizeBytes, &u.SHA256, &u.UserID, &u.KeyID, &u.Actor, &u.CreatedAt, &u.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, export.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return &u, nil
}

// CreateUpload records a restore upload.
func (s *Store) CreateUpload(ctx context.Context, u *export.RestoreUpload) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO hubexport.uploads (`+uploadColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.SizeBytes, u.SHA256, u.UserID, u.KeyID, u.Actor, u.CreatedAt, u.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store: create upload %s: %w", u.ID, err)
	}
	return nil
}

// Upload returns the record of upload id, or export.ErrNotFound.
func (s *Store) Upload(ctx context.Context, id string) (*export.RestoreUpload, error) {
	u, err := scanUpload(s.pool.QueryRow(ctx, `SELECT `+uploadColumns+` FROM hubexport.uploads WHERE id = $1`, id))
	if err != nil && !errors.Is(err, export.ErrNotFound) {
		return nil, fmt.Errorf("store: upload %s: %w", id, err)
	}
	return u, err
}

// DeleteUpload removes the record of upload id.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM hubexport.uploads WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete upload %s: %w", id, err)
	}
	return nil
}

// StaleUploads lists up to limit upload records created before t, oldest
// first.
func (s *Store) StaleUploads(ctx context.Context, t time.Time, limit int) ([]*export.RestoreUpload, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+uploadColumns+` FROM hubexport.uploads WHERE created_at < $1 ORDER BY created_at LIMIT $2`, t, limit)
	if err != nil {
		return nil, fmt.Errorf("store: stale uploads: %w", err)
	}
	defer rows.Close()
	var out []*export.RestoreUpload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, fmt.Errorf("store: stale uploads: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: stale uploads: %w", err)
	}
	return out, nil
}
