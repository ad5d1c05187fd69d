package hub

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DB reads the hub's database.
type DB struct {
	pool *pgxpool.Pool
}

// New returns a DB over pool, which the caller owns and closes.
func New(pool *pgxpool.Pool) *DB {
	return &DB{pool: pool}
}

// Ping checks that the hub's database answers (readiness).
func (d *DB) Ping(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return fmt.Errorf("hub: ping: %w", err)
	}
	return nil
}
