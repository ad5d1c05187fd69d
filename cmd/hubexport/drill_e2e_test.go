package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type manifestTable struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	Rows         int64  `json:"rows"`
	DataExcluded bool   `json:"data_excluded"`
}

type manifest struct {
	FormatVersion int             `json:"format_version"`
	JobID         string          `json:"job_id"`
	Mode          string          `json:"mode"`
	ServerVersion string          `json:"server_version"`
	Tables        []manifestTable `json:"tables"`
	TotalRows     int64           `json:"total_rows"`
}

func manifestOf(t *testing.T, j backupJob) manifest {
	t.Helper()
	b, err := json.Marshal(j.Result.Details["manifest"])
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil || m.FormatVersion != 1 {
		t.Fatalf("details.manifest %s: %v", b, err)
	}
	return m
}

// The manifest counts the rows the dump holds, exactly, while rows keep
// being inserted during the backup; it is stored beside the artifact and
// deleted with it.
func TestBackupManifestMatchesDump(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.exec(`CREATE TABLE public.drill_ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`)
	s.start("serve")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var inserted atomic.Int64
	done := make(chan struct{})
	pool := s.pool()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := pool.Exec(ctx, `INSERT INTO public.drill_ticks DEFAULT VALUES`); err == nil {
				inserted.Add(1)
			}
		}
	}()
	until(t, 10*time.Second, "inserts start", func() bool { return inserted.Load() > 50 })
	// Hold pg_dump on a table lock after it took its snapshot, so rows
	// keep arriving between the snapshot and the dump's read.
	release := s.holdTable("users")
	id := s.backup("")
	until(t, 20*time.Second, "pg_dump starts", func() bool { return s.pgDumps() > 0 })
	before := inserted.Load()
	until(t, 10*time.Second, "more inserts during the dump", func() bool { return inserted.Load() > before+200 })
	release()
	b := s.finish(id, time.Minute)
	stop()
	<-done
	s.checkBackup(b, "")

	m := manifestOf(t, b)
	if m.JobID != b.ID || m.Mode != "full" || !strings.HasPrefix(m.ServerVersion, "1") || len(m.Tables) < 8 {
		t.Fatalf("manifest %+v", m)
	}
	target := emptyDatabase(t)
	r := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if r.Status != "succeeded" {
		t.Fatalf("restore: %s %+v", r.Status, r.Error)
	}
	got := fingerprint(t, target)
	var total int64
	for _, tb := range m.Tables {
		name := tb.Schema + "." + tb.Name
		if g, ok := got[name]; !ok || g.Rows != tb.Rows {
			t.Errorf("table %s: manifest says %d rows, the restored dump holds %d (present %v)", name, tb.Rows, g.Rows, ok)
		}
		total += tb.Rows
		delete(got, name)
	}
	if len(got) != 0 {
		t.Errorf("tables in the dump but not in the manifest: %v", got)
	}
	if total != m.TotalRows {
		t.Errorf("total_rows %d, tables sum to %d", m.TotalRows, total)
	}
	var live int64
	_ = s.pool().QueryRow(context.Background(), `SELECT count(*) FROM public.drill_ticks`).Scan(&live)
	var ticks int64
	for _, tb := range m.Tables {
		if tb.Name == "drill_ticks" {
			ticks = tb.Rows
		}
	}
	if ticks == 0 || ticks >= live {
		t.Errorf("drill_ticks: manifest %d rows, %d now: the inserts did not overlap the dump", ticks, live)
	}

	// Beside the artifact, the same manifest.
	artifact := filepath.Join(dir, "backups", b.ID, b.Result.Filename)
	raw, err := os.ReadFile(artifact + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var side manifest
	if err := json.Unmarshal(raw, &side); err != nil || side.TotalRows != m.TotalRows || len(side.Tables) != len(m.Tables) {
		t.Fatalf("manifest file %s: %v", raw, err)
	}
	// Deleting the artifact deletes its manifest.
	if r := s.do("DELETE", "/api/v1/exports/"+b.ID, adminToken, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, f := range []string{artifact, artifact + ".manifest.json"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still there after the delete: %v", f, err)
		}
	}
}
