package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

func TestBackupAgeConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	spk, _ := ssh.NewPublicKey(pub)
	sshPub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " ops@example"
	sshFP := "ssh-ed25519 " + ssh.FingerprintSHA256(spk)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	sshPriv := write("id_ed25519", string(pem.EncodeToMemory(block)))
	recFile := write("recipients.txt", "# backup keys\n\n"+b.Recipient().String()+"\n"+sshPub+"\n")
	badRecFile := write("bad-recipients.txt", "# keys\n"+b.Recipient().String()+"\nssh-dss AAAA\n")
	emptyRecFile := write("empty.txt", "# none yet\n")
	idFile := write("identity.txt", "# created: today\n"+a.String()+"\n")
	badIDFile := write("bad-identity.txt", "# created: today\n"+a.Recipient().String()+"\n")

	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantFPs   []string
		wantIDs   []string
		wantErr   string // substrings, "|" separated
		notInErrs string
	}{
		{name: "unset"},
		{name: "list", env: map[string]string{"BACKUP_AGE_RECIPIENTS": a.Recipient().String() + ", " + sshPub},
			wantFPs: []string{a.Recipient().String(), sshFP}},
		{name: "file", env: map[string]string{"BACKUP_AGE_RECIPIENTS_FILE": recFile},
			wantFPs: []string{b.Recipient().String(), sshFP}},
		{name: "both, deduplicated", env: map[string]string{"BACKUP_AGE_RECIPIENTS": a.Recipient().String() + "," + b.Recipient().String(), "BACKUP_AGE_RECIPIENTS_FILE": recFile},
			wantFPs: []string{a.Recipient().String(), b.Recipient().String(), sshFP}},
		{name: "age identity", env: map[string]string{"BACKUP_AGE_IDENTITY_FILE": idFile}, wantIDs: []string{"X25519"}},
		{name: "ssh identity", env: map[string]string{"BACKUP_AGE_IDENTITY_FILE": sshPriv}, wantIDs: []string{"ssh-ed25519"}},
		{name: "bad list item", env: map[string]string{"BACKUP_AGE_RECIPIENTS": a.Recipient().String() + ",age1nope"},
			wantErr: "BACKUP_AGE_RECIPIENTS item 2 is not an age X25519 recipient"},
		{name: "private key as recipient", env: map[string]string{"BACKUP_AGE_RECIPIENTS": a.String()},
			wantErr: "BACKUP_AGE_RECIPIENTS item 1 is a private key", notInErrs: a.String()},
		{name: "bad file line", env: map[string]string{"BACKUP_AGE_RECIPIENTS_FILE": badRecFile},
			wantErr: "BACKUP_AGE_RECIPIENTS_FILE (" + badRecFile + "): line 3 is not a recipient"},
		{name: "empty file", env: map[string]string{"BACKUP_AGE_RECIPIENTS_FILE": emptyRecFile},
			wantErr: "BACKUP_AGE_RECIPIENTS_FILE (" + emptyRecFile + ") holds no recipient"},
		{name: "missing file", env: map[string]string{"BACKUP_AGE_RECIPIENTS_FILE": filepath.Join(dir, "nope")},
			wantErr: "BACKUP_AGE_RECIPIENTS_FILE names a file that cannot be read"},
		{name: "bad identity line", env: map[string]string{"BACKUP_AGE_IDENTITY_FILE": badIDFile},
			wantErr: "BACKUP_AGE_IDENTITY_FILE (" + badIDFile + ") line 2 is not an age identity"},
		{name: "missing identity", env: map[string]string{"BACKUP_AGE_IDENTITY_FILE": filepath.Join(dir, "nope")},
			wantErr: "BACKUP_AGE_IDENTITY_FILE names a file that cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if tc.notInErrs != "" && strings.Contains(err.Error(), tc.notInErrs) {
					t.Fatalf("error quotes secret material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var fps []string
			for _, r := range c.Backup.AgeRecipients {
				fps = append(fps, r.Fingerprint)
			}
			if !slices.Equal(fps, tc.wantFPs) {
				t.Errorf("recipients %q, want %q", fps, tc.wantFPs)
			}
			var kinds []string
			if c.Backup.AgeIdentities != nil {
				kinds = c.Backup.AgeIdentities.Kinds
			}
			if !slices.Equal(kinds, tc.wantIDs) {
				t.Errorf("identities %q, want %q", kinds, tc.wantIDs)
			}
			for _, a := range c.LogAttrs() {
				if s, ok := a.(string); ok && strings.Contains(s, "AGE-SECRET-KEY") {
					t.Errorf("log attributes hold a private key")
				}
			}
		})
	}
}
