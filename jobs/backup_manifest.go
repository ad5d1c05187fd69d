package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// manifestTaker counts a backup's tables in the snapshot its pg_dump reads
// (pgdump.Snapshot), while the dump runs.
type manifestTaker struct {
	snap   *pgdump.Snapshot
	cancel context.CancelFunc
	done   chan struct{}
	m      export.BackupManifest
	err    error
}

// startManifest exports a snapshot of the hub database and starts counting
// in it. The caller passes snap.ID to pg_dump and then calls finish.
func startManifest(ctx context.Context, c pgdump.Conn, mode pgdump.Mode, jobID string) (*manifestTaker, error) {
	snap, err := pgdump.OpenSnapshot(ctx, c)
	if err != nil {
		return nil, &export.Error{Kind: export.KindUnavailable, Code: "database_unavailable",
			Message: "cannot open the snapshot the backup is counted and dumped in: " + err.Error(), Err: err}
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &manifestTaker{snap: snap, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.m, t.err = snap.Manifest(ctx, mode, []string{ownSchema})
		t.m.JobID = jobID
	}()
	return t, nil
}

// finish waits for the counts and ends the snapshot's transaction; call it
// once pg_dump has ended (it reads the snapshot only while the transaction
// lives). It is safe to call more than once.
func (t *manifestTaker) finish(ctx context.Context) (export.BackupManifest, error) {
	<-t.done
	if t.snap != nil {
		t.snap.Close(context.WithoutCancel(ctx))
		t.snap = nil
	}
	return t.m, t.err
}

// stop abandons the counts (the dump failed) and ends the transaction.
func (t *manifestTaker) stop(ctx context.Context) {
	t.cancel()
	_, _ = t.finish(ctx)
}

// writeManifest stores m beside the artifact at key (export.ManifestKey).
func writeManifest(ctx context.Context, objs export.ObjectStore, key string, m export.BackupManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("jobs: encode manifest: %w", err)
	}
	up, err := objs.Create(ctx, export.ManifestKey(key), "application/json")
	if err != nil {
		return &storageError{err}
	}
	if _, err := up.Write(append(b, '\n')); err != nil {
		_ = up.Abort(context.WithoutCancel(ctx))
		return &storageError{err}
	}
	if err := up.Commit(ctx); err != nil {
		_ = up.Abort(context.WithoutCancel(ctx))
		return &storageError{err}
	}
	return nil
}
