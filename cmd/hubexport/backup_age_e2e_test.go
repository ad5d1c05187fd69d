package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hubexport/hubexport/internal/testenv"
)

// ageKey is a key pair made by Debian's stock age-keygen.
type ageKey struct {
	identityFile string
	recipient    string
}

func stockAgeKey(t *testing.T) ageKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identity.txt")
	if out, err := exec.Command("age-keygen", "-o", path).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen (Debian package age): %v\n%s", err, out)
	}
	out, err := exec.Command("age-keygen", "-y", path).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	return ageKey{identityFile: path, recipient: strings.TrimSpace(string(out))}
}

// sshKeyPair writes an unprotected ssh-ed25519 private key and returns its
// path, its public key line and its fingerprint as the job result shows it.
func sshKeyPair(t *testing.T) (privateFile, public, fp string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spk, _ := ssh.NewPublicKey(pub)
	block, err := ssh.MarshalPrivateKey(priv, "ops@example")
	if err != nil {
		t.Fatal(err)
	}
	privateFile = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(privateFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return privateFile, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " ops@example", "ssh-ed25519 " + ssh.FingerprintSHA256(spk)
}

// pgTool finds a PostgreSQL client program as the workers do: the newest
// Debian install, else PATH.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(found, func(i, k int) bool { return pgMajorOf(found[i]) < pgMajorOf(found[k]) })
	if len(found) > 0 {
		return found[len(found)-1]
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install postgresql-client", name)
	}
	return p
}

func pgMajorOf(path string) int {
	var n int
	fmt.Sscanf(filepath.Base(filepath.Dir(filepath.Dir(path))), "%d", &n)
	return n
}

func runTool(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// checkEncryptedBackup checks an encrypted backup's result and stored file,
// and returns the file.
func (s *stack) checkEncryptedBackup(j backupJob, fingerprints []string) []byte {
	s.t.Helper()
	if j.Status != "succeeded" {
		s.t.Fatalf("encrypted backup %s: %s %+v", j.ID, j.Status, j.Error)
	}
	r := j.Result
	if !strings.HasSuffix(r.Filename, ".dump.age") || !backupName.MatchString(strings.TrimSuffix(r.Filename, ".age")) || r.ContentType != "application/vnd.age" {
		s.t.Fatalf("encrypted backup result %+v", r)
	}
	d := r.Details
	var got []string
	for _, f := range d["recipients"].([]any) {
		got = append(got, f.(string))
	}
	if d["encrypted"] != true || d["encryption"] != "age" || !slices.Equal(got, fingerprints) {
		s.t.Fatalf("encrypted backup details %v, want recipients %q", d, fingerprints)
	}
	if n, _ := d["toc_entries"].(float64); n < 10 {
		s.t.Fatalf("encrypted backup details %v: want toc_entries from the plaintext", d)
	}
	body, hdr, _ := s.download(adminToken, j.ID)
	sum := sha256.Sum256(body)
	if !bytes.HasPrefix(body, []byte("age-encryption.org/v1\n")) || int64(len(body)) != r.SizeBytes || hex.EncodeToString(sum[:]) != r.SHA256 {
		s.t.Fatalf("stored file: %d bytes, sha256 %x, starts %q; result says %d bytes, %s", len(body), sum, body[:min(len(body), 24)], r.SizeBytes, r.SHA256)
	}
	if bytes.Contains(body, []byte("PGDMP")) || bytes.Contains(body, []byte("message_request")) {
		s.t.Fatal("the stored backup holds plaintext")
	}
	if ct := hdr.Get("Content-Type"); ct != "application/vnd.age" {
		s.t.Errorf("download Content-Type %q", ct)
	}
	for _, k := range []string{"AGE-SECRET-KEY", "PRIVATE KEY"} {
		if strings.Contains(fmt.Sprint(d), k) {
			s.t.Fatalf("result details hold private material: %v", d)
		}
	}
	return body
}

// With BACKUP_AGE_RECIPIENTS set, every backup is encrypted, on S3: Debian's
// stock age decrypts it, the plaintext passes pg_restore --list and
// restores; hubexport restores it with BACKUP_AGE_IDENTITY_FILE; a file the
// stock age CLI encrypted (armored) restores through hubexport; and no
// request can turn encryption off.
func TestEncryptedBackupInterop(t *testing.T) {
	t.Parallel()
	key := stockAgeKey(t)
	_, sshPub, sshFP := sshKeyPair(t)
	recipients := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(recipients, []byte("# operators\n"+sshPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bucket := testenv.NewS3(t)
	s := newStack(t, withS3(bucket, bucket.Endpoint), withEnv("BACKUP_AGE_RECIPIENTS", key.recipient),
		withEnv("BACKUP_AGE_RECIPIENTS_FILE", recipients), withEnv("BACKUP_AGE_IDENTITY_FILE", key.identityFile))
	s.start("serve")
	want := fingerprint(t, s.dsn)

	r := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "database_backup", "params": map[string]any{"encrypt": false}})
	if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || !strings.Contains(fields["params.encrypt"], "the server's policy requires every backup to be encrypted") {
		t.Fatalf("encrypt:false under the policy: %d %s", r.status, r.body)
	}

	b := s.finish(s.backup(""), time.Minute)
	body := s.checkEncryptedBackup(b, []string{key.recipient, sshFP})
	if b.Params["encrypt"] != true {
		t.Errorf("params %v: want encrypt true", b.Params)
	}

	// Debian's age decrypts it; the plaintext is the dump hubexport listed.
	enc := filepath.Join(t.TempDir(), b.Result.Filename)
	if err := os.WriteFile(enc, body, 0o600); err != nil {
		t.Fatal(err)
	}
	plain := runTool(t, nil, "age", "-d", "-i", key.identityFile, enc)
	sum := sha256.Sum256(plain)
	d := b.Result.Details
	if hex.EncodeToString(sum[:]) != d["plaintext_sha256"] || float64(len(plain)) != d["plaintext_bytes"] || !bytes.HasPrefix(plain, []byte("PGDMP")) {
		t.Fatalf("age -d gave %d bytes (sha256 %x); result says %v bytes, %v", len(plain), sum, d["plaintext_bytes"], d["plaintext_sha256"])
	}
	list := runTool(t, plain, pgTool(t, "pg_restore"), "--list")
	if !strings.Contains(string(list), "TABLE DATA public message_request") {
		t.Fatalf("pg_restore --list of the decrypted backup:\n%s", list)
	}
	byCLI := emptyDatabase(t)
	dumpFile := filepath.Join(t.TempDir(), "backup.dump")
	if err := os.WriteFile(dumpFile, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, nil, pgTool(t, "pg_restore"), "--no-owner", "-d", byCLI, dumpFile)
	sameTables(t, fingerprint(t, byCLI), want)

	// hubexport decrypts its own backup with BACKUP_AGE_IDENTITY_FILE.
	target := emptyDatabase(t)
	rj := s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if rj.Status != "succeeded" || rj.Result.Details["encrypted"] != true {
		t.Fatalf("restore of the encrypted backup: %s %+v %v", rj.Status, rj.Error, rj.Result)
	}
	sameTables(t, fingerprint(t, target), want)

	// A file the stock age CLI encrypted (ASCII-armored) restores through hubexport.
	armored := runTool(t, plain, "age", "-a", "-r", key.recipient)
	if !bytes.HasPrefix(armored, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		t.Fatalf("age -a wrote %q", armored[:min(len(armored), 40)])
	}
	up := s.upload(armored)
	target2 := emptyDatabase(t)
	uj := s.finish(s.restore(map[string]any{"upload_id": up, "target_database_url": target2}), time.Minute)
	if uj.Status != "succeeded" || uj.Result.Details["encrypted"] != true {
		t.Fatalf("restore of an upload encrypted by age: %s %+v", uj.Status, uj.Error)
	}
	sameTables(t, fingerprint(t, target2), want)
	if _, ups := bucketLeftovers(t, bucket); ups != 0 {
		t.Errorf("%d multipart uploads left", ups)
	}
}

// Without an identity, or with one that is not a recipient's, a restore of
// an encrypted backup fails before touching the hub, naming the variable.
// A request's own recipients encrypt a backup on a server without a policy,
// and an SSH private key decrypts it.
func TestEncryptedRestoreIdentity(t *testing.T) {
	t.Parallel()
	sshPriv, sshPub, sshFP := sshKeyPair(t)
	s := newStack(t)
	p := s.start("serve")
	want := fingerprint(t, s.dsn)

	r := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "database_backup", "params": map[string]any{"encrypt": true}})
	if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || !strings.Contains(fields["params.age_recipients"], "BACKUP_AGE_RECIPIENTS is unset") {
		t.Fatalf("encrypt without recipients: %d %s", r.status, r.body)
	}
	r = s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "database_backup", "params": map[string]any{"age_recipients": []string{"age1notakey"}}})
	if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || fields["params.age_recipients[0]"] == "" {
		t.Fatalf("bad recipient: %d %s", r.status, r.body)
	}
	b := s.finish(s.create(adminToken, map[string]any{"type": "database_backup",
		"params": map[string]any{"age_recipients": []string{sshPub}}}).ID, time.Minute)
	s.checkEncryptedBackup(b, []string{sshFP})
	plainBackup := s.finish(s.backup(""), time.Minute)
	s.checkBackup(plainBackup, "")

	restoreHub := func() backupJob {
		return s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "clean_first": true}), time.Minute)
	}
	j := restoreHub()
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "decrypt_identity_missing" || !strings.Contains(j.Error.Message, "BACKUP_AGE_IDENTITY_FILE") {
		t.Fatalf("restore without an identity: %s %+v", j.Status, j.Error)
	}
	sameTables(t, fingerprint(t, s.dsn), want)

	p.Stop(t)
	s.env["BACKUP_AGE_IDENTITY_FILE"] = stockAgeKey(t).identityFile
	p = s.start("serve")
	j = restoreHub()
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "decrypt_failed" || !strings.Contains(j.Error.Message, "other recipients") {
		t.Fatalf("restore with a wrong identity: %s %+v", j.Status, j.Error)
	}
	sameTables(t, fingerprint(t, s.dsn), want)

	p.Stop(t)
	s.env["BACKUP_AGE_IDENTITY_FILE"] = sshPriv
	s.start("serve")
	target := emptyDatabase(t)
	j = s.finish(s.restore(map[string]any{"backup_job_id": b.ID, "target_database_url": target}), time.Minute)
	if j.Status != "succeeded" || j.Result.Details["encrypted"] != true {
		t.Fatalf("restore with the SSH key: %s %+v", j.Status, j.Error)
	}
	sameTables(t, fingerprint(t, target), want)
	// A binary file the stock age CLI encrypted to the SSH public key (age -R) restores too.
	plainDump, _, _ := s.download(adminToken, plainBackup.ID)
	pubFile := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(pubFile, []byte(sshPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := s.upload(runTool(t, plainDump, "age", "-R", pubFile))
	target = emptyDatabase(t)
	j = s.finish(s.restore(map[string]any{"upload_id": up, "target_database_url": target}), time.Minute)
	if j.Status != "succeeded" || j.Result.Details["encrypted"] != true {
		t.Fatalf("restore of an upload encrypted by age -R: %s %+v", j.Status, j.Error)
	}
	sameTables(t, fingerprint(t, target), want)
	// A plain backup still restores on a worker that has an identity.
	j = s.finish(s.restore(map[string]any{"backup_job_id": plainBackup.ID, "target_database_url": emptyDatabase(t)}), time.Minute)
	if j.Status != "succeeded" || j.Result.Details["encrypted"] != false {
		t.Fatalf("restore of a plain backup: %s %+v", j.Status, j.Error)
	}
}

// An encrypted backup whose plaintext pg_restore --list cannot read (teed
// to it as it streams) is deleted, never published.
func TestEncryptedBackupUnverifiable(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "pg_restore")
	body := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_restore (PostgreSQL) 99.0'; exit 0; fi\n" +
		"head -c 100 >/dev/null\necho 'pg_restore: error: could not read from input file: end of file' >&2\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, withEnv("PG_RESTORE_PATH", script), withEnv("BACKUP_AGE_RECIPIENTS", stockAgeKey(t).recipient))
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	j := s.finish(s.backup(""), 2*time.Minute)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "backup_unverifiable" || !strings.Contains(j.Error.Message, "plaintext") {
		t.Fatalf("unverifiable encrypted backup: %s, %+v", j.Status, j.Error)
	}
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("storage holds %v", files)
	}
}

// A schedule with its own recipients makes encrypted backups that Debian's
// age decrypts; asking a schedule to encrypt with no recipient anywhere is a
// 400 naming the field.
func TestScheduleEncryptedBackups(t *testing.T) {
	t.Parallel()
	key := stockAgeKey(t)
	s := newStack(t, withFastSchedules())
	s.start("serve")

	r := s.do("POST", "/api/v1/schedules", adminToken, map[string]any{"name": "enc", "cron": "@every 2s", "encrypt": true})
	if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || !strings.Contains(fields["age_recipients"], "BACKUP_AGE_RECIPIENTS is unset") {
		t.Fatalf("encrypting schedule without recipients: %d %s", r.status, r.body)
	}
	sc := s.createSchedule(map[string]any{"name": "enc", "cron": "@every 2s", "mode": "exclude_logs", "age_recipients": []string{key.recipient}})
	var read struct {
		Encrypt       bool     `json:"encrypt"`
		AgeRecipients []string `json:"age_recipients"`
	}
	s.do("GET", "/api/v1/schedules/"+sc.ID, adminToken, nil).json(t, &read)
	if !read.Encrypt || !slices.Equal(read.AgeRecipients, []string{key.recipient}) {
		t.Fatalf("schedule reads %+v", read)
	}
	var done string
	until(t, time.Minute, "a succeeded scheduled backup", func() bool {
		for _, j := range s.scheduleJobs(sc.ID) {
			if j.Status == "succeeded" {
				done = j.ID
				return true
			}
		}
		return false
	})
	s.patchSchedule(sc.ID, map[string]any{"enabled": false})
	b := s.job(done)
	body := s.checkEncryptedBackup(b, []string{key.recipient})
	if !strings.HasSuffix(b.Result.Filename, "_no-logs.dump.age") {
		t.Errorf("file %s", b.Result.Filename)
	}
	enc := filepath.Join(t.TempDir(), "scheduled.dump.age")
	if err := os.WriteFile(enc, body, 0o600); err != nil {
		t.Fatal(err)
	}
	plain := runTool(t, nil, "age", "-d", "-i", key.identityFile, enc)
	if list := runTool(t, plain, pgTool(t, "pg_restore"), "--list"); !strings.Contains(string(list), "TABLE public message_request") ||
		strings.Contains(string(list), "TABLE DATA public message_request") {
		t.Fatalf("pg_restore --list of the scheduled backup (exclude_logs):\n%s", list)
	}
}
