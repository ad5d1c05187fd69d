package hub

import (
	"context"
	"fmt"
)

// DatabaseSize is pg_database_size of the hub's database, in bytes, which
// a backup logs (it is no measure of the compressed dump).
func (d *DB) DatabaseSize(ctx context.Context) (int64, error) {
	var n int64
	if err := d.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, fmt.Errorf("hub: database size: %w", err)
	}
	return n, nil
}
