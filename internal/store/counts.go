package store

import (
	"context"
	"fmt"
)

// JobCount is how many jobs of one type are in one status.
type JobCount struct {
	Type   string
	Status string
	Jobs   int64
}

// ActiveJobs counts queued and running jobs by type and status. It reads
// only the jobs_active partial index's rows, so it stays cheap enough to
// run on every metrics scrape however many ended jobs the table holds.
func (s *Store) ActiveJobs(ctx context.Context) ([]JobCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT type, status, count(*) FROM hubexport.jobs
		WHERE status IN ('queued', 'running') GROUP BY type, status`)
	if err != nil {
		return nil, fmt.Errorf("store: count active jobs: %w", err)
	}
	defer rows.Close()
	var out []JobCount
	for rows.Next() {
		var c JobCount
		if err := rows.Scan(&c.Type, &c.Status, &c.Jobs); err != nil {
			return nil, fmt.Errorf("store: count active jobs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count active jobs: %w", err)
	}
	return out, nil
}
