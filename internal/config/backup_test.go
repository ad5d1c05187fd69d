package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBackupConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Backup; b.Location != time.UTC || b.PgDumpPath != "" || b.PgRestorePath != "" || b.LockWait != 15*time.Minute || b.LockRenew != time.Minute || b.Concurrency != 1 {
		t.Fatalf("backup defaults %+v", b)
	}
	c, err = Load(env(map[string]string{"BACKUP_TIMEZONE": "Asia/Shanghai", "PG_DUMP_PATH": "/opt/pg/bin/pg_dump",
		"PG_RESTORE_PATH": "/opt/pg/bin/pg_restore", "BACKUP_LOCK_WAIT": "1h", "BACKUP_LOCK_RENEW_INTERVAL": "10s", "BACKUP_CONCURRENCY": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Backup; b.Location.String() != "Asia/Shanghai" || b.PgDumpPath != "/opt/pg/bin/pg_dump" ||
		b.PgRestorePath != "/opt/pg/bin/pg_restore" || b.LockWait != time.Hour || b.LockRenew != 10*time.Second || b.Concurrency != 3 {
		t.Fatalf("backup settings %+v", b)
	}
	for name, v := range map[string]string{"BACKUP_TIMEZONE": "Mars/Olympus", "BACKUP_LOCK_RENEW_INTERVAL": "5m", "BACKUP_CONCURRENCY": "0"} {
		_, err := Load(env(map[string]string{name: v}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want an error naming it", name, v, err)
		}
	}
}

func TestVerifyDatabaseURL(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil || c.Backup.VerifyDatabaseURL != "" {
		t.Fatalf("default: %q %v", c.Backup.VerifyDatabaseURL, err)
	}
	c, err = Load(env(map[string]string{"VERIFY_DATABASE_URL": "postgres://drills:s3cret@db:5432/postgres"}))
	if err != nil || c.Backup.VerifyDatabaseURL != "postgres://drills:s3cret@db:5432/postgres" {
		t.Fatalf("set: %q %v", c.Backup.VerifyDatabaseURL, err)
	}
	if attrs := fmt.Sprint(c.LogAttrs()...); strings.Contains(attrs, "s3cret") || !strings.Contains(attrs, "postgres://drills:xxxxx@db:5432/postgres") {
		t.Errorf("log attrs %s", attrs)
	}
	_, err = Load(env(map[string]string{"VERIFY_DATABASE_URL": "mysql://drills@db/x"}))
	if err == nil || !strings.Contains(err.Error(), "VERIFY_DATABASE_URL") || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("bad URL: %v", err)
	}
}
