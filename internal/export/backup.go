package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Backup modes (hub-facts §3.2): what a database_backup leaves out.
const (
	BackupModeFull        = "full"         // everything
	BackupModeExcludeLogs = "exclude_logs" // message_request's schema, none of its rows
	BackupModeLedgerOnly  = "ledger_only"  // no message_request table at all
)

// ContentTypeDump is the content type of pg_dump custom-format archives.
const ContentTypeDump = "application/octet-stream"

// ContentTypeAge is the content type of an age-encrypted backup, whose
// name ends in ExtensionAge.
const (
	ContentTypeAge = "application/vnd.age"
	ExtensionAge   = ".age"
)

// maxAgeRecipients bounds a request's own recipients.
const maxAgeRecipients = 20

// BackupParams are the parameters of a database_backup, normalised.
type BackupParams struct {
	Mode string `json:"mode"`
	// Encrypt: the dump is age-encrypted, to the server's recipients
	// (BACKUP_AGE_RECIPIENTS) and AgeRecipients.
	Encrypt bool `json:"encrypt,omitempty"`
	// AgeRecipients are the request's (or schedule's) own recipients: age
	// X25519 or SSH public keys.
	AgeRecipients []string `json:"age_recipients,omitempty"`
}

// BackupEncryption is the server's backup encryption policy.
type BackupEncryption struct {
	// Required: the server has recipients of its own, so every backup is
	// encrypted to them and no request or schedule can turn that off.
	Required bool
	// CheckRecipient validates one recipient given in a request; its error
	// is shown to the user. Nil accepts none.
	CheckRecipient func(string) error
}

// Encrypts reports whether a backup with params p is encrypted.
func (e BackupEncryption) Encrypts(p BackupParams) bool { return e.Required || p.Encrypt }

// resolve checks a request's encryption fields (under prefix: "params." or
// "") and returns whether the backup is encrypted and to which of the
// request's own recipients.
func (e BackupEncryption) resolve(prefix string, encrypt *bool, recipients []string) (bool, []string, error) {
	var out []string
	seen := map[string]bool{}
	if len(recipients) > maxAgeRecipients {
		return false, nil, Invalid(prefix+"age_recipients", "holds %d recipients; give at most %d", len(recipients), maxAgeRecipients)
	}
	for i, r := range recipients {
		r = strings.TrimSpace(r)
		field := fmt.Sprintf("%sage_recipients[%d]", prefix, i)
		if e.CheckRecipient == nil {
			return false, nil, Invalid(field, "this server cannot encrypt to recipients given in a request")
		}
		if err := e.CheckRecipient(r); err != nil {
			return false, nil, Invalid(field, "%v", err)
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	switch {
	case encrypt != nil && !*encrypt && e.Required:
		return false, nil, Invalid(prefix+"encrypt", "cannot be false: the server's policy requires every backup to be encrypted "+
			"(BACKUP_AGE_RECIPIENTS is set); leave encrypt out or set it to true")
	case encrypt != nil && !*encrypt && len(out) > 0:
		return false, nil, Invalid(prefix+"encrypt", "is false but %sage_recipients is set; drop one of them", prefix)
	case encrypt != nil && *encrypt && !e.Required && len(out) == 0:
		return false, nil, Invalid(prefix+"age_recipients", "is required to encrypt: the server has no recipients of its own "+
			"(BACKUP_AGE_RECIPIENTS is unset); give age1… or ssh-ed25519/ssh-rsa public keys")
	}
	return e.Required || len(out) > 0 || (encrypt != nil && *encrypt), out, nil
}

// ParseBackupParams checks a database_backup request's params against the
// server's encryption policy.
func ParseBackupParams(raw json.RawMessage, enc BackupEncryption) (BackupParams, error) {
	var in struct {
		Mode          *string  `json:"mode"`
		Encrypt       *bool    `json:"encrypt"`
		AgeRecipients []string `json:"age_recipients"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return BackupParams{}, err
	}
	p := BackupParams{Mode: BackupModeFull}
	if in.Mode != nil && *in.Mode != "" {
		switch *in.Mode {
		case BackupModeFull, BackupModeExcludeLogs, BackupModeLedgerOnly:
			p.Mode = *in.Mode
		default:
			return p, Invalid("params.mode", "must be \"full\", \"exclude_logs\" or \"ledger_only\", not %q", *in.Mode)
		}
	}
	var err error
	p.Encrypt, p.AgeRecipients, err = enc.resolve("params.", in.Encrypt, in.AgeRecipients)
	return p, err
}

// BackupFileSuffix is CCH's file name suffix for a mode.
func BackupFileSuffix(mode string) string {
	switch mode {
	case BackupModeExcludeLogs:
		return "_no-logs"
	case BackupModeLedgerOnly:
		return "_ledger-only"
	}
	return ""
}

// BackupFilename is CCH's name for a backup made at t, with t shown in loc:
// backup_2026-08-04T02-36-52_no-logs.dump.
func BackupFilename(t time.Time, loc *time.Location, mode string) string {
	if loc == nil {
		loc = time.UTC
	}
	return "backup_" + t.In(loc).Format("2006-01-02T15-04-05") + BackupFileSuffix(mode) + ".dump"
}

// BackupSpec describes the database_backup type. File names show the job's
// creation time in loc (BACKUP_TIMEZONE). Each backup sits in its own folder
// under backups/, so two backups started in the same second (which CCH's
// names cannot tell apart) never share a key. An encrypted backup's name
// ends in .dump.age and its content type is ContentTypeAge.
func BackupSpec(loc *time.Location, enc BackupEncryption) TypeSpec {
	params := func(j *Job) BackupParams {
		var p BackupParams
		_ = json.Unmarshal(j.Params, &p)
		return p
	}
	return TypeSpec{
		Type:      TypeDatabaseBackup,
		AdminOnly: true,
		Formats:   []Format{FormatDump},
		Parse: func(raw json.RawMessage, _ Principal) (json.RawMessage, error) {
			p, err := ParseBackupParams(raw, enc)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		ContentType: func(Format) string { return ContentTypeDump },
		JobContentType: func(j *Job) string {
			if enc.Encrypts(params(j)) {
				return ContentTypeAge
			}
			return ContentTypeDump
		},
		Filename: func(j *Job, _ time.Time) string {
			p := params(j)
			name := BackupFilename(j.CreatedAt, loc, p.Mode)
			if enc.Encrypts(p) {
				name += ExtensionAge
			}
			return name
		},
		StoragePrefix: func(j *Job) string { return "backups/" + j.ID + "/" },
	}
}

// RestoreParams are the parameters of a database_restore, normalised. The
// dump comes from exactly one of BackupJobID and UploadID.
type RestoreParams struct {
	BackupJobID string `json:"backup_job_id,omitempty"`
	UploadID    string `json:"upload_id,omitempty"`
	// TargetDatabaseURL is where to restore; empty means the hub database
	// (DATABASE_URL). The API shows it with its password redacted.
	TargetDatabaseURL string `json:"target_database_url,omitempty"`
	CleanFirst        bool   `json:"clean_first"`
	SkipLogs          bool   `json:"skip_logs"`
	DryRun            bool   `json:"dry_run"`
}

// RestoreAdvice is what the result of a restore tells the operator.
const RestoreAdvice = "restart CCH so its migrations bring an older dump up to date"

var (
	uploadIDPattern = regexp.MustCompile(`^upl_[0-9a-f]{32}$`)
	jobIDPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ValidUploadID reports whether id has the form CreateUpload gives.
func ValidUploadID(id string) bool { return uploadIDPattern.MatchString(id) }

// UploadsPrefix is the folder of the storage keys of restore uploads.
const UploadsPrefix = "uploads/"

// UploadKey is where the dump of upload id is stored.
func UploadKey(id string) string { return UploadsPrefix + id + ".dump" }

// ParseRestoreParams checks a database_restore request's params. checkURL,
// if not nil, validates target_database_url the way the restore tools will
// read it; its error must not quote the URL.
func ParseRestoreParams(raw json.RawMessage, checkURL func(string) error) (RestoreParams, error) {
	var in struct {
		BackupJobID       *string `json:"backup_job_id"`
		UploadID          *string `json:"upload_id"`
		TargetDatabaseURL *string `json:"target_database_url"`
		CleanFirst        *bool   `json:"clean_first"`
		SkipLogs          *bool   `json:"skip_logs"`
		DryRun            *bool   `json:"dry_run"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return RestoreParams{}, err
	}
	var p RestoreParams
	if in.BackupJobID != nil {
		p.BackupJobID = strings.TrimSpace(*in.BackupJobID)
	}
	if in.UploadID != nil {
		p.UploadID = strings.TrimSpace(*in.UploadID)
	}
	switch {
	case p.BackupJobID == "" && p.UploadID == "":
		return p, Invalid("params.backup_job_id", "give backup_job_id (a succeeded database_backup job) or upload_id (from POST /api/v1/restores/uploads)")
	case p.BackupJobID != "" && p.UploadID != "":
		return p, Invalid("params.upload_id", "give backup_job_id or upload_id, not both")
	case p.BackupJobID != "" && !jobIDPattern.MatchString(p.BackupJobID):
		return p, Invalid("params.backup_job_id", "%q is not a job id", p.BackupJobID)
	case p.UploadID != "" && !ValidUploadID(p.UploadID):
		return p, Invalid("params.upload_id", "%q is not an upload id; use the upload_id POST /api/v1/restores/uploads returned", p.UploadID)
	}
	if in.TargetDatabaseURL != nil && strings.TrimSpace(*in.TargetDatabaseURL) != "" {
		u := strings.TrimSpace(*in.TargetDatabaseURL)
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return p, Invalid("params.target_database_url", "must be a postgres:// URL, such as postgres://user:password@host:5432/dbname")
		}
		if checkURL != nil {
			if err := checkURL(u); err != nil {
				return p, Invalid("params.target_database_url", "%v", err)
			}
		}
		p.TargetDatabaseURL = u
	}
	p.CleanFirst = in.CleanFirst != nil && *in.CleanFirst
	p.SkipLogs = in.SkipLogs != nil && *in.SkipLogs
	p.DryRun = in.DryRun != nil && *in.DryRun
	return p, nil
}

// RestoreSpec describes the database_restore type: it makes no file; its
// result carries what pg_restore did. checkURL validates
// target_database_url (see ParseRestoreParams).
func RestoreSpec(checkURL func(string) error) TypeSpec {
	return TypeSpec{
		Type:      TypeDatabaseRestore,
		AdminOnly: true,
		Formats:   []Format{FormatDump},
		Parse: func(raw json.RawMessage, _ Principal) (json.RawMessage, error) {
			p, err := ParseRestoreParams(raw, checkURL)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		NoArtifact:  true,
		AuditParams: true,
		Check:       checkRestoreSource,
	}
}

// checkRestoreSource refuses, at creation, a restore whose dump is not there.
func checkRestoreSource(ctx context.Context, s *Service, raw json.RawMessage) error {
	var p RestoreParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("export: decode restore params: %w", err)
	}
	if p.UploadID != "" {
		missing := Invalid("params.upload_id", "nothing was uploaded for %s; PUT the dump to the upload URL first (uploads are removed after a successful restore)", p.UploadID)
		_, err := s.Uploads.Upload(ctx, p.UploadID)
		if errors.Is(err, ErrNotFound) {
			return missing
		}
		if err != nil {
			return fmt.Errorf("export: check upload %s: %w", p.UploadID, err)
		}
		ok, err := s.Objects.Exists(ctx, UploadKey(p.UploadID))
		if err != nil {
			return fmt.Errorf("export: check upload %s: %w", p.UploadID, err)
		}
		if !ok {
			return missing
		}
		return nil
	}
	_, _, err := RestoreSource(ctx, s.Store, p.BackupJobID, s.Now())
	return err
}

// RestoreSource returns the storage key of the dump of backup job id and
// the SHA-256 recorded when it was made ("" if none was), or an error of
// kind KindInvalid saying why it cannot be restored.
func RestoreSource(ctx context.Context, jobs interface {
	Job(ctx context.Context, id string) (*Job, error)
}, id string, now time.Time) (key, sha256 string, err error) {
	j, err := jobs.Job(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "", "", Invalid("params.backup_job_id", "no job %s", id)
	}
	if err != nil {
		return "", "", err
	}
	switch {
	case j.Type != TypeDatabaseBackup:
		return "", "", Invalid("params.backup_job_id", "job %s is a %s job, not a database_backup", id, j.Type)
	case j.Status != StatusSucceeded || j.StorageKey == "":
		return "", "", Invalid("params.backup_job_id", "backup job %s is %s; only a succeeded backup can be restored", id, j.Status)
	case j.Result != nil && !j.Result.ExpiresAt.IsZero() && !now.Before(j.Result.ExpiresAt):
		return "", "", Invalid("params.backup_job_id", "the file of backup job %s has expired", id)
	}
	if j.Result != nil {
		sha256 = j.Result.SHA256
	}
	return j.StorageKey, sha256, nil
}
