package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HubRedisURL != c.RedisURL || c.StorageURL != "file://./data/exports" || c.MaxActiveJobs != 3 ||
		c.ArtifactRetention != 7*24*time.Hour || c.DownloadLinkTTL != 15*time.Minute || c.HTTPAddr != ":8080" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ADMIN_TOKEN_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "s3cret-token" {
		t.Fatalf("admin token %q", c.AdminToken)
	}
	_, err = Load(env(map[string]string{"ADMIN_TOKEN_FILE": f, "ADMIN_TOKEN": "x"}))
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set") {
		t.Fatalf("want both-set error, got %v", err)
	}
}

func TestErrorsNameEveryVariable(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{
		"DATABASE_URL":                  "mysql://x",
		"REDIS_URL":                     "http://x",
		"ARTIFACT_RETENTION":            "forever",
		"MAX_ACTIVE_JOBS_PER_PRINCIPAL": "0",
		"S3_FORCE_PATH_STYLE":           "maybe",
		"LOG_LEVEL":                     "loud",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "ARTIFACT_RETENTION", "MAX_ACTIVE_JOBS_PER_PRINCIPAL", "S3_FORCE_PATH_STYLE", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestDurationsAndRedaction(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ARTIFACT_RETENTION": "3d", "DATABASE_URL": "postgres://u:p%40ss@db1:5432,db2:5432/hub?sslmode=require"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ArtifactRetention != 72*time.Hour {
		t.Fatalf("retention %v", c.ArtifactRetention)
	}
	attrs := c.LogAttrs()
	for i, a := range attrs {
		if s, ok := a.(string); ok && (strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss")) {
			t.Fatalf("password leaked: %v", a)
		}
		if a == "database_url" && attrs[i+1] != "postgres://u:xxxxx@db1:5432,db2:5432/hub?sslmode=require" {
			t.Fatalf("database_url logged as %q", attrs[i+1])
		}
	}
}

func TestVariablesListsWhatLoadReads(t *testing.T) {
	t.Parallel()
	vars := Variables()
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "HUB_REDIS_URL", "ADMIN_TOKEN", "ADMIN_TOKEN_FILE", "STORAGE_URL", "S3_SECRET_ACCESS_KEY_FILE", "PUBLIC_URL"} {
		found := false
		for _, v := range vars {
			found = found || v == want
		}
		if !found {
			t.Errorf("Variables() misses %s: %v", want, vars)
		}
	}
}

func TestRestoreUploadMaxBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"": 5 << 30, "1048576": 1 << 20, "512MiB": 512 << 20, "5GiB": 5 << 30, "2 TiB": 2 << 40, "100B": 100} {
		c, err := Load(env(map[string]string{"RESTORE_UPLOAD_MAX_BYTES": in}))
		if err != nil || c.RestoreUploadMaxBytes != want {
			t.Errorf("RESTORE_UPLOAD_MAX_BYTES=%q: %d, %v; want %d", in, c.RestoreUploadMaxBytes, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "5GB", "lots", "1.5GiB", "99999999999TiB"} {
		_, err := Load(env(map[string]string{"RESTORE_UPLOAD_MAX_BYTES": in}))
		if err == nil || !strings.Contains(err.Error(), "RESTORE_UPLOAD_MAX_BYTES") || !strings.Contains(err.Error(), "GiB") {
			t.Errorf("RESTORE_UPLOAD_MAX_BYTES=%q: %v; want an error naming it", in, err)
		}
	}
}
