package export

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseBackupParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want, field string }{
		{``, `{"mode":"full"}`, ""},
		{`{}`, `{"mode":"full"}`, ""},
		{`{"mode":""}`, `{"mode":"full"}`, ""},
		{`{"mode":"exclude_logs"}`, `{"mode":"exclude_logs"}`, ""},
		{`{"mode":"ledger_only"}`, `{"mode":"ledger_only"}`, ""},
		{`{"mode":"excludeLogs"}`, "", "params.mode"},
		{`{"mode":3}`, "", "params.mode"},
		{`{"tables":["users"]}`, "", "params.tables"},
	} {
		p, err := ParseBackupParams(json.RawMessage(tc.raw), BackupEncryption{})
		if tc.field != "" {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || e.Fields[tc.field] == "" {
				t.Errorf("%s: error %v, want one naming %s", tc.raw, err, tc.field)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if got := mustJSON(t, p); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.raw, got, tc.want)
		}
	}
}

func TestBackupFilename(t *testing.T) {
	t.Parallel()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 8, 4, 2, 36, 52, 999_000_000, time.UTC)
	for _, tc := range []struct {
		loc  *time.Location
		mode string
		want string
	}{
		{nil, BackupModeFull, "backup_2026-08-04T02-36-52.dump"},
		{time.UTC, BackupModeExcludeLogs, "backup_2026-08-04T02-36-52_no-logs.dump"},
		{shanghai, BackupModeLedgerOnly, "backup_2026-08-04T10-36-52_ledger-only.dump"},
	} {
		if got := BackupFilename(at, tc.loc, tc.mode); got != tc.want {
			t.Errorf("%v %s: %s, want %s", tc.loc, tc.mode, got, tc.want)
		}
	}
	spec := BackupSpec(shanghai, BackupEncryption{})
	j := &Job{ID: "exp_01", CreatedAt: at, Params: json.RawMessage(`{"mode":"exclude_logs"}`)}
	if got := spec.ArtifactKey(j, spec.Filename(j, time.Now())); got != "backups/exp_01/backup_2026-08-04T10-36-52_no-logs.dump" {
		t.Errorf("backup key %s", got)
	}
	if got := ProbeLogSpec().ArtifactPrefix(j); got != "exports/2026/08/exp_01/" {
		t.Errorf("default prefix %s", got)
	}
}

// A key's text stands in for real recipients: the domain only asks the
// injected checker.
func checkKey(s string) error {
	if !strings.HasPrefix(s, "age1") && !strings.HasPrefix(s, "ssh-ed25519 ") {
		return errors.New("is not a recipient")
	}
	return nil
}

func TestBackupEncryptionPolicy(t *testing.T) {
	t.Parallel()
	open := BackupEncryption{CheckRecipient: checkKey}
	policy := BackupEncryption{Required: true, CheckRecipient: checkKey}
	for _, tc := range []struct {
		name  string
		enc   BackupEncryption
		raw   string
		want  string // normalised params
		field string // or the field of the 400
		msg   string // and a phrase of its message
	}{
		{name: "no policy, no ask", enc: open, raw: `{}`, want: `{"mode":"full"}`},
		{name: "no policy, explicit plain", enc: open, raw: `{"encrypt":false}`, want: `{"mode":"full"}`},
		{name: "own recipients turn it on", enc: open, raw: `{"age_recipients":["age1aaa"," ssh-ed25519 AAAA ","age1aaa"]}`,
			want: `{"mode":"full","encrypt":true,"age_recipients":["age1aaa","ssh-ed25519 AAAA"]}`},
		{name: "encrypt without any recipient", enc: open, raw: `{"encrypt":true}`, field: "params.age_recipients", msg: "BACKUP_AGE_RECIPIENTS is unset"},
		{name: "plain with recipients", enc: open, raw: `{"encrypt":false,"age_recipients":["age1aaa"]}`, field: "params.encrypt", msg: "drop one"},
		{name: "bad recipient", enc: open, raw: `{"age_recipients":["age1aaa","AGE-SECRET"]}`, field: "params.age_recipients[1]", msg: "is not a recipient"},
		{name: "policy encrypts by default", enc: policy, raw: `{"mode":"exclude_logs"}`, want: `{"mode":"exclude_logs","encrypt":true}`},
		{name: "policy plus own", enc: policy, raw: `{"encrypt":true,"age_recipients":["age1bbb"]}`, want: `{"mode":"full","encrypt":true,"age_recipients":["age1bbb"]}`},
		{name: "policy cannot be turned off", enc: policy, raw: `{"encrypt":false}`, field: "params.encrypt", msg: "the server's policy requires every backup to be encrypted"},
		{name: "no checker", enc: BackupEncryption{}, raw: `{"age_recipients":["age1aaa"]}`, field: "params.age_recipients[0]", msg: "cannot encrypt"},
	} {
		p, err := ParseBackupParams(json.RawMessage(tc.raw), tc.enc)
		if tc.field != "" {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || !strings.Contains(e.Fields[tc.field], tc.msg) {
				t.Errorf("%s: error %v, want one naming %s saying %q", tc.name, err, tc.field, tc.msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := mustJSON(t, p); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}

	at := time.Date(2026, 8, 4, 2, 36, 52, 0, time.UTC)
	for _, tc := range []struct {
		enc          BackupEncryption
		params, name string
		ct           string
	}{
		{open, `{"mode":"full"}`, "backup_2026-08-04T02-36-52.dump", ContentTypeDump},
		{open, `{"mode":"full","encrypt":true,"age_recipients":["age1aaa"]}`, "backup_2026-08-04T02-36-52.dump.age", ContentTypeAge},
		// A worker whose server encrypts encrypts every backup, also one
		// queued before the policy was set.
		{policy, `{"mode":"ledger_only"}`, "backup_2026-08-04T02-36-52_ledger-only.dump.age", ContentTypeAge},
	} {
		spec := BackupSpec(time.UTC, tc.enc)
		j := &Job{ID: "exp_01", CreatedAt: at, Format: FormatDump, Params: json.RawMessage(tc.params)}
		if got := spec.Filename(j, at); got != tc.name {
			t.Errorf("%s: file %s, want %s", tc.params, got, tc.name)
		}
		if got := spec.ArtifactContentType(j); got != tc.ct {
			t.Errorf("%s: content type %s, want %s", tc.params, got, tc.ct)
		}
	}
}

func TestParseRestoreParams(t *testing.T) {
	t.Parallel()
	const upl = "upl_0123456789abcdef0123456789abcdef"
	refuse := func(s string) error {
		if strings.Contains(s, "bad") {
			return errors.New("cannot parse it")
		}
		return nil
	}
	p, err := ParseRestoreParams(json.RawMessage(`{"upload_id":" `+upl+` ","target_database_url":"postgres://u:p@db/x","clean_first":true,"skip_logs":true,"dry_run":true}`), refuse)
	if err != nil {
		t.Fatal(err)
	}
	if want := (RestoreParams{UploadID: upl, TargetDatabaseURL: "postgres://u:p@db/x", CleanFirst: true, SkipLogs: true, DryRun: true}); p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if p, err := ParseRestoreParams(json.RawMessage(`{"backup_job_id":"exp_01J0"}`), refuse); err != nil || mustJSON(t, p) != `{"backup_job_id":"exp_01J0","clean_first":false,"skip_logs":false,"dry_run":false}` {
		t.Errorf("backup_job_id only: %+v %v", p, err)
	}
	for _, tc := range []struct{ raw, field string }{
		{`{}`, "params.backup_job_id"},
		{`{"backup_job_id":"exp_1","upload_id":"` + upl + `"}`, "params.upload_id"},
		{`{"upload_id":"../../etc/passwd"}`, "params.upload_id"},
		{`{"backup_job_id":"exp 1/.."}`, "params.backup_job_id"},
		{`{"backup_job_id":"exp_1","target_database_url":"mysql://x"}`, "params.target_database_url"},
		{`{"backup_job_id":"exp_1","target_database_url":"postgres://bad"}`, "params.target_database_url"},
		{`{"backup_job_id":"exp_1","clean_first":"yes"}`, "params.clean_first"},
		{`{"backup_job_id":"exp_1","file":"x.dump"}`, "params.file"},
	} {
		_, err := ParseRestoreParams(json.RawMessage(tc.raw), refuse)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || e.Fields[tc.field] == "" {
			t.Errorf("%s: error %v, want one naming %s", tc.raw, err, tc.field)
		}
	}
}

// The job object never shows a target database's password, while the
// stored params (which the worker reads) keep it.
func TestJobJSONRedactsDatabaseURL(t *testing.T) {
	t.Parallel()
	params := json.RawMessage(`{"upload_id":"upl_1","target_database_url":"postgres://u:s3cret@db/x","clean_first":false,"skip_logs":false,"dry_run":false}`)
	j := &Job{ID: "exp_1", Type: TypeDatabaseRestore, Params: params}
	for name, v := range map[string]any{"pointer": j, "value": *j, "page": JobPage{Jobs: []*Job{j}}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), `postgres://u:xxxxx@db/x`) {
			t.Errorf("%s: %s", name, b)
		}
	}
	if !strings.Contains(string(j.Params), "s3cret") {
		t.Error("marshalling changed the stored params")
	}
	plain := &Job{ID: "exp_2", Params: json.RawMessage(`{"mode":"full"}`)}
	if b, _ := json.Marshal(plain); !strings.Contains(string(b), `"params":{"mode":"full"}`) {
		t.Errorf("other params changed: %s", b)
	}
}
