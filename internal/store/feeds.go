package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

// FeedMark implements jobs.FeedStore.
func (s *Store) FeedMark(ctx context.Context, owner int64, name string) (*export.FeedMark, error) {
	var (
		at *time.Time
		id *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT mark_at, mark_id FROM hubexport.feeds WHERE owner_user_id = $1 AND name = $2`,
		owner, name).Scan(&at, &id)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && (at == nil || id == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: feed %d/%s: %w", owner, name, err)
	}
	return &export.FeedMark{CreatedAt: at.UTC(), ID: *id}, nil
}

// succeedFeed records a feed export's success (succeed, in the same
// transaction) only if the feed's mark is still the one the export started
// from, and moves it to a.To. Another export of the feed that succeeded
// meanwhile makes it export.ErrFeedMoved, and nothing changes: this
// export's file would repeat rows, so it runs again.
func (s *Store) succeedFeed(ctx context.Context, jobID string, a *export.FeedAdvance, succeed func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO hubexport.feeds (owner_user_id, name) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, a.Owner, a.Name); err != nil {
			return err
		}
		var (
			at *time.Time
			id *int64
		)
		if err := tx.QueryRow(ctx, `SELECT mark_at, mark_id FROM hubexport.feeds WHERE owner_user_id = $1 AND name = $2 FOR UPDATE`,
			a.Owner, a.Name).Scan(&at, &id); err != nil {
			return err
		}
		var cur *export.FeedMark
		if at != nil && id != nil {
			cur = &export.FeedMark{CreatedAt: at.UTC(), ID: *id}
		}
		if !sameMark(cur, a.From) {
			return export.ErrFeedMoved
		}
		if err := succeed(tx); err != nil {
			return err
		}
		var toAt *time.Time
		var toID *int64
		if a.To != nil {
			toAt, toID = &a.To.CreatedAt, &a.To.ID
		}
		_, err := tx.Exec(ctx, `UPDATE hubexport.feeds SET mark_at = $3, mark_id = $4, last_job_id = $5, updated_at = now()
			WHERE owner_user_id = $1 AND name = $2`, a.Owner, a.Name, toAt, toID, jobID)
		return err
	})
	if errors.Is(err, export.ErrFeedMoved) || errors.Is(err, export.ErrSuperseded) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: record feed %d/%s: %w", a.Owner, a.Name, err)
	}
	return nil
}

func sameMark(a, b *export.FeedMark) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.CreatedAt.Equal(b.CreatedAt) && a.ID == b.ID
}
