package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// BackupManifest is what a database_backup recorded at dump time: the exact
// row count of every table the dump holds, counted in the snapshot pg_dump
// read. A restore drill compares a restored copy against it. It is kept in
// the job's result (details.manifest) and beside the artifact (ManifestKey),
// so a backup file can be checked without hubexport's database.
type BackupManifest struct {
	// FormatVersion is 1; a reader refuses a newer one.
	FormatVersion    int             `json:"format_version"`
	JobID            string          `json:"job_id"`
	Mode             string          `json:"mode"`
	ServerVersion    string          `json:"server_version"`
	ServerVersionNum int             `json:"server_version_num"`
	Database         string          `json:"database"`
	Tables           []ManifestTable `json:"tables"`
	TotalRows        int64           `json:"total_rows"`
}

// ManifestTable is one table of a manifest.
type ManifestTable struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	// DataExcluded: the dump holds the table without its rows (mode
	// exclude_logs), so a restored copy must be empty.
	DataExcluded bool `json:"data_excluded,omitempty"`
}

// QualifiedName is schema.name as a reader writes it.
func (t ManifestTable) QualifiedName() string { return t.Schema + "." + t.Name }

// ManifestFormatVersion is the manifest format this build writes and reads.
const ManifestFormatVersion = 1

// ManifestSuffix ends the storage key of a backup's manifest.
const ManifestSuffix = ".manifest.json"

// ManifestKey is where the manifest of the artifact at key is stored.
func ManifestKey(artifactKey string) string { return artifactKey + ManifestSuffix }

// DeleteArtifact deletes the artifact at key and the manifest beside it (a
// database_backup's); a missing one is not an error. Every place that
// removes an artifact goes through it, so no manifest outlives its backup.
func DeleteArtifact(ctx context.Context, objs ObjectStore, key string) error {
	if err := objs.Delete(ctx, ManifestKey(key)); err != nil {
		return err
	}
	return objs.Delete(ctx, key)
}

// ManifestOf decodes the manifest recorded in a backup job's result;
// ok is false for a backup made before manifests were recorded.
func ManifestOf(j *Job) (m BackupManifest, ok bool, err error) {
	if j.Result == nil || j.Result.Details == nil {
		return m, false, nil
	}
	raw, ok := j.Result.Details["manifest"]
	if !ok || raw == nil {
		return m, false, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return m, false, fmt.Errorf("export: manifest of %s: %w", j.ID, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("export: manifest of %s: %w", j.ID, err)
	}
	if m.FormatVersion > ManifestFormatVersion {
		return m, false, fmt.Errorf("export: manifest of %s has format %d; this build reads up to %d", j.ID, m.FormatVersion, ManifestFormatVersion)
	}
	return m, true, nil
}

// ReadManifest reads the manifest stored beside the artifact at key;
// os.ErrNotExist when there is none.
func ReadManifest(ctx context.Context, objs ObjectStore, key string) (BackupManifest, error) {
	var m BackupManifest
	rc, err := objs.Open(ctx, ManifestKey(key))
	if err != nil {
		return m, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return m, fmt.Errorf("export: read manifest %s: %w", ManifestKey(key), err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("export: decode manifest %s: %w", ManifestKey(key), err)
	}
	if m.FormatVersion == 0 || m.FormatVersion > ManifestFormatVersion {
		return m, fmt.Errorf("export: manifest %s has format %d; this build reads 1 to %d", ManifestKey(key), m.FormatVersion, ManifestFormatVersion)
	}
	return m, nil
}
