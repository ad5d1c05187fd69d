package export

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// TypeBackupVerify is a restore drill: a backup restored into a scratch
// database, its tables counted against the backup's manifest, optional
// SQL checks run, the scratch database dropped.
const TypeBackupVerify Type = "backup_verify"

// VerifyParams are the parameters of a backup_verify, normalised.
type VerifyParams struct {
	BackupJobID string `json:"backup_job_id"`
	// Checks are SELECT statements that must each return one row whose
	// one column is true, run read-only in the restored copy.
	Checks []string `json:"checks,omitempty"`
}

const (
	maxVerifyChecks   = 50
	maxVerifyCheckLen = 10000
)

// ParseVerifyParams checks a backup_verify request's params.
func ParseVerifyParams(raw json.RawMessage) (VerifyParams, error) {
	var in struct {
		BackupJobID *string  `json:"backup_job_id"`
		Checks      []string `json:"checks"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return VerifyParams{}, err
	}
	var p VerifyParams
	if in.BackupJobID != nil {
		p.BackupJobID = strings.TrimSpace(*in.BackupJobID)
	}
	switch {
	case p.BackupJobID == "":
		return p, Invalid("params.backup_job_id", "is required: the id of a succeeded database_backup job")
	case !jobIDPattern.MatchString(p.BackupJobID):
		return p, Invalid("params.backup_job_id", "%q is not a job id", p.BackupJobID)
	case len(in.Checks) > maxVerifyChecks:
		return p, Invalid("params.checks", "at most %d checks, not %d", maxVerifyChecks, len(in.Checks))
	}
	for i, c := range in.Checks {
		field := fmt.Sprintf("params.checks[%d]", i)
		c, err := checkSelect(field, c)
		if err != nil {
			return p, err
		}
		p.Checks = append(p.Checks, c)
	}
	return p, nil
}

// checkSelect accepts one SELECT (or WITH … SELECT) statement, without a
// trailing semicolon. The drill also runs it in a read-only transaction:
// this check is for a clear error, not for safety.
func checkSelect(field, sql string) (string, error) {
	s := strings.TrimSpace(sql)
	s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	switch {
	case s == "":
		return "", Invalid(field, "must not be empty: give a SELECT that returns true, such as \"SELECT count(*) > 0 FROM users\"")
	case len(s) > maxVerifyCheckLen:
		return "", Invalid(field, "must be at most %d characters", maxVerifyCheckLen)
	case strings.Contains(s, ";"):
		return "", Invalid(field, "must be a single statement (no ';' inside)")
	}
	first := strings.ToLower(strings.Fields(s)[0])
	if first != "select" && first != "with" && !strings.HasPrefix(first, "select(") {
		return "", Invalid(field, "must be a SELECT statement returning true, not %s", strings.ToUpper(first))
	}
	return s, nil
}

// VerifySpec describes the backup_verify type: admin only, no file; the
// result's details carry the per-table comparison.
func VerifySpec() TypeSpec {
	return TypeSpec{
		Type:      TypeBackupVerify,
		AdminOnly: true,
		Formats:   []Format{FormatJSON},
		Parse: func(raw json.RawMessage, _ Principal) (json.RawMessage, error) {
			p, err := ParseVerifyParams(raw)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		NoArtifact:  true,
		AuditParams: true,
		Check: func(ctx context.Context, s *Service, raw json.RawMessage) error {
			var p VerifyParams
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("export: decode verify params: %w", err)
			}
			_, _, err := RestoreSource(ctx, s.Store, p.BackupJobID, s.Now())
			return err
		},
	}
}

// VerifyDatabasePrefix starts the name of every drill's scratch database;
// the rest is the drill's job id, lowercased.
const VerifyDatabasePrefix = "hubexport_verify_"

// VerifyDatabaseName is the scratch database of drill job id.
func VerifyDatabaseName(jobID string) string {
	return VerifyDatabasePrefix + strings.ToLower(jobID)
}

// DrillTable is one table's line in a drill's result.
type DrillTable struct {
	Table    string `json:"table"`
	Expected int64  `json:"expected"`
	// Actual is -1 when the table is missing from the restored copy.
	Actual int64 `json:"actual"`
	OK     bool  `json:"ok"`
}

// DrillCheck is one admin-given check's line in a drill's result.
type DrillCheck struct {
	SQL   string `json:"sql"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}
