package jobs

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
)

// Whom a backup is encrypted to: the worker's policy recipients plus the
// job's own; a job that must be encrypted but has no recipient anywhere
// fails rather than be written in clear.
func TestBackupRecipients(t *testing.T) {
	t.Parallel()
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	ra, _ := agefile.ParseRecipient(a.Recipient().String())
	policy := &DatabaseBackupHandler{AgeRecipients: []agefile.Recipient{ra}}
	none := &DatabaseBackupHandler{}
	for _, tc := range []struct {
		name string
		h    *DatabaseBackupHandler
		p    export.BackupParams
		want []string
		code string
	}{
		{name: "plain", h: none, p: export.BackupParams{Mode: "full"}},
		{name: "policy, plain params", h: policy, p: export.BackupParams{Mode: "full"}, want: []string{ra.Fingerprint}},
		{name: "policy and own", h: policy, p: export.BackupParams{Encrypt: true, AgeRecipients: []string{b.Recipient().String(), a.Recipient().String()}},
			want: []string{ra.Fingerprint, b.Recipient().String()}},
		{name: "own only", h: none, p: export.BackupParams{Encrypt: true, AgeRecipients: []string{b.Recipient().String()}}, want: []string{b.Recipient().String()}},
		{name: "nobody", h: none, p: export.BackupParams{Encrypt: true}, code: "encryption_unconfigured"},
		{name: "bad stored key", h: none, p: export.BackupParams{Encrypt: true, AgeRecipients: []string{"age1bad"}}, code: "invalid_request"},
	} {
		rs, err := tc.h.recipients(tc.p)
		if tc.code != "" {
			var e *export.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Kind != export.KindInvalid {
				t.Errorf("%s: %v, want code %s", tc.name, err, tc.code)
			}
			continue
		}
		if err != nil || !slices.Equal(agefile.Fingerprints(rs), tc.want) {
			t.Errorf("%s: %q %v, want %q", tc.name, agefile.Fingerprints(rs), err, tc.want)
		}
	}
}

// A backup that finds CCH holding the backup lock past its wait fails with
// backup_lock_conflict, saying who holds it.
func TestBackupLockConflict(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := f.rdb.Set(t.Context(), lock.BackupKey, "1769682600000-k3j9x2q", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	d := &DatabaseTools{LockRedis: f.rdb, LockWait: -1}
	job := &export.Job{ID: "exp_conflict", Type: export.TypeDatabaseBackup}
	_, err := d.lockBackup(t.Context(), job, nil, slog.New(slog.DiscardHandler), "database_export", noMetrics{})
	var e *export.Error
	if !errors.As(err, &e) || e.Code != "backup_lock_conflict" || e.Kind != export.KindConflict || !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(e.Message, "held by a backup or restore started from CCH") {
		t.Errorf("message: %s", e.Message)
	}
}
