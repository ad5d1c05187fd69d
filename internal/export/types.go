package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Type is an export type's API name, also stored with every job.
type Type string

const (
	TypeUsageLogs       Type = "usage_logs"
	TypeDatabaseBackup  Type = "database_backup"
	TypeDatabaseRestore Type = "database_restore"
	TypeSessionRequest  Type = "session_request"
	TypeProbeLogs       Type = "probe_logs"
)

// Format is an output format's API name.
type Format string

const (
	FormatCSV     Format = "csv"
	FormatCSVGz   Format = "csv.gz"
	FormatXLSX    Format = "xlsx"
	FormatJSONL   Format = "jsonl"
	FormatParquet Format = "parquet"
	FormatDump    Format = "dump"
	FormatJSON    Format = "json"
	FormatText    Format = "txt"
)

// TypeSpec is what the domain knows about one export type: who may ask for
// it, in which formats, and how its parameters are checked.
type TypeSpec struct {
	Type      Type
	AdminOnly bool
	// Formats lists the accepted formats; the first is the default.
	Formats []Format
	// Parse checks raw params for principal p and returns them normalised
	// (defaults filled in, a user's user_id forced to their own). Errors are
	// *Error of kind KindInvalid naming the field.
	Parse func(raw json.RawMessage, p Principal) (json.RawMessage, error)
	// ContentType of the artifact for a format.
	ContentType func(Format) string
	// JobContentType, if set, is the artifact's content type when it
	// depends on more than the format (an encrypted backup).
	JobContentType func(j *Job) string
	// Filename of the artifact, given the job and the time it ends.
	Filename func(j *Job, now time.Time) string
	// StoragePrefix, if set, is the folder (ending in "/") of a job's
	// artifact; every unfinished write of the job's attempts lies below it.
	// Default: exports/<yyyy>/<mm>/<job id>/.
	StoragePrefix func(j *Job) string
	// NoArtifact: the type's jobs make no file; their result carries
	// Details only (ContentType and Filename are unused).
	NoArtifact bool
	// AuditParams records the job's params, as the API shows them, with its
	// creation in the audit trail.
	AuditParams bool
	// Check, if set, checks parsed params against stored state (a job, an
	// uploaded file) when a job is created. Errors are *Error as for Parse.
	Check func(ctx context.Context, s *Service, params json.RawMessage) error
}

// ArtifactPrefix is the folder of job j's artifact.
func (s TypeSpec) ArtifactPrefix(j *Job) string {
	if s.StoragePrefix != nil {
		return s.StoragePrefix(j)
	}
	c := j.CreatedAt.UTC()
	return fmt.Sprintf("exports/%04d/%02d/%s/", c.Year(), int(c.Month()), j.ID)
}

// ArtifactContentType is the content type of job j's artifact.
func (s TypeSpec) ArtifactContentType(j *Job) string {
	if s.JobContentType != nil {
		return s.JobContentType(j)
	}
	return s.ContentType(j.Format)
}

// ArtifactKey is where job j's artifact named filename is stored.
func (s TypeSpec) ArtifactKey(j *Job, filename string) string {
	return s.ArtifactPrefix(j) + filename
}

// Registry holds the export types this build can run.
type Registry struct {
	specs map[Type]TypeSpec
}

// NewRegistry returns a registry of the given specs.
func NewRegistry(specs ...TypeSpec) *Registry {
	r := &Registry{specs: make(map[Type]TypeSpec, len(specs))}
	for _, s := range specs {
		r.specs[s.Type] = s
	}
	return r
}

// Spec returns the spec of t.
func (r *Registry) Spec(t Type) (TypeSpec, bool) {
	s, ok := r.specs[t]
	return s, ok
}

// Types lists the registered type names, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.specs))
	for t := range r.specs {
		out = append(out, string(t))
	}
	sort.Strings(out)
	return out
}

// DecodeStrict decodes raw into v, rejecting unknown fields and trailing
// data, and turns decoding errors into *Error naming the field under prefix.
func DecodeStrict(raw json.RawMessage, v any, prefix string) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, prefix)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid(strings.TrimSuffix(prefix, "."), "unexpected data after the JSON object")
	}
	return checkText(reflect.ValueOf(v), strings.TrimSuffix(prefix, "."))
}

// checkText refuses a decoded string that is not text (NUL bytes, which a
// JSON body can carry as \u0000 and PostgreSQL refuses), naming its field
// by its JSON name.
func checkText(v reflect.Value, name string) error {
	child := func(n string) string {
		if name == "" {
			return n
		}
		return name + "." + n
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkText(v.Elem(), name)
	case reflect.String:
		if !IsText(v.String()) {
			return Invalid(name, "must be UTF-8 text without NUL bytes, not %q", v.String())
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			n, _, _ := strings.Cut(tag, ",")
			field := child(n)
			if n == "" && f.Anonymous {
				field = name
			} else if n == "" {
				field = child(f.Name)
			}
			if err := checkText(v.Field(i), field); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // bytes and raw JSON: decoded, and checked, later
		}
		for i := range v.Len() {
			if err := checkText(v.Index(i), fmt.Sprintf("%s[%d]", name, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if !IsText(k) {
				return Invalid(child(Printable(k)), "is not a valid name: names are UTF-8 text without NUL bytes")
			}
			if err := checkText(iter.Value(), child(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func decodeError(err error, prefix string) error {
	var typeErr *json.UnmarshalTypeError
	var synErr *json.SyntaxError
	var fieldErr *Error
	switch {
	case errors.As(err, &fieldErr):
		if fieldErr.Kind == KindInvalid && len(fieldErr.Fields) == 1 {
			for f, m := range fieldErr.Fields {
				return Invalid(prefix+f, "%s", m)
			}
		}
		return fieldErr
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return Invalid(strings.TrimSuffix(prefix, "."), "must be a JSON object")
		}
		return Invalid(prefix+field, "must be %s, not a JSON %s", jsonKindName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &synErr):
		return Invalid(strings.TrimSuffix(prefix, "."), "malformed JSON at byte %d: %v", synErr.Offset, synErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(prefix+name, "unknown field; remove it (see the API documentation for the accepted fields)")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid(strings.TrimSuffix(prefix, "."), "the JSON body is empty or cut short")
	}
	return Invalid(strings.TrimSuffix(prefix, "."), "%v", err)
}

func jsonKindName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a " + kind
}

// ParseInstant reads a time given as epoch milliseconds or an RFC 3339
// string; absent or null gives nil.
func ParseInstant(field string, raw json.RawMessage) (*time.Time, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, Invalid(field, "malformed string")
		}
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return nil, Invalid(field, "%q is not an RFC 3339 time (example: 2026-01-29T10:30:00Z) or epoch milliseconds", Printable(str))
		}
		t = t.UTC()
		if t.Before(minInstant) || t.After(maxInstant) {
			return nil, Invalid(field, "%q is out of range: times must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z", str)
		}
		return &t, nil
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, Invalid(field, "%s is not epoch milliseconds (an integer) or an RFC 3339 string", Printable(s))
	}
	if ms < minInstant.UnixMilli() || ms > maxInstant.UnixMilli() {
		return nil, Invalid(field, "%d is out of range: epoch milliseconds must be between %d (0001-01-01) and %d (9999-12-31)",
			ms, minInstant.UnixMilli(), maxInstant.UnixMilli())
	}
	t := time.UnixMilli(ms).UTC()
	return &t, nil
}

// The times ParseInstant accepts: what RFC 3339 can write, and
// PostgreSQL's timestamptz hold.
var (
	minInstant = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxInstant = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// LoadZone checks an IANA zone name for field; empty means UTC.
func LoadZone(field, name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, Invalid(field, "unknown time zone %q; use an IANA name such as \"UTC\" or \"Asia/Shanghai\"", name)
	}
	return loc, nil
}
