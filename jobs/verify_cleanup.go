package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// dropOrphanDrills drops the scratch databases of restore drills that no
// longer run: the drill's job has ended, or is marked running but no live
// attempt holds its lease (the worker crashed). A live attempt always
// holds its lease while its scratch database exists. A scratch database
// whose job this deployment does not know is left alone: another
// deployment on the same server owns it.
func (m *Maintenance) dropOrphanDrills(ctx context.Context) (int, error) {
	if m.VerifyAdmin == nil {
		return 0, nil
	}
	names, err := pgdump.ListDatabases(ctx, *m.VerifyAdmin, export.VerifyDatabasePrefix)
	if err != nil {
		return 0, fmt.Errorf("jobs: list scratch databases: %w", err)
	}
	dropped := 0
	for _, name := range names {
		id := drillJobID(name)
		orphan, err := m.drillOrphaned(ctx, id)
		if err != nil {
			return dropped, err
		}
		if !orphan {
			continue
		}
		if err := pgdump.DropDatabase(ctx, *m.VerifyAdmin, name); err != nil {
			return dropped, fmt.Errorf("jobs: drop scratch database: %w", err)
		}
		m.Log.InfoContext(ctx, "scratch_database_orphan_dropped", "scratch_database", name, "job_id", id)
		dropped++
	}
	return dropped, nil
}

// drillJobID is the job id a scratch database's name was made from: job
// ids are "exp_" and an upper-case ULID.
func drillJobID(name string) string {
	rest := strings.TrimPrefix(name, export.VerifyDatabasePrefix)
	if after, ok := strings.CutPrefix(rest, "exp_"); ok {
		return "exp_" + strings.ToUpper(after)
	}
	return rest
}

func (m *Maintenance) drillOrphaned(ctx context.Context, id string) (bool, error) {
	j, err := m.Store.Job(ctx, id)
	if errors.Is(err, export.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if j.Type != export.TypeBackupVerify {
		return false, nil
	}
	if j.Status != export.StatusRunning {
		return true, nil
	}
	n, err := m.Redis.Exists(ctx, leaseKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("jobs: check lease of %s: %w", id, err)
	}
	return n == 0, nil
}
