package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hubexport/hubexport/internal/config"
	apiclient "github.com/hubexport/hubexport/web/client"
)

const exportUsage = `usage: hubexport export TYPE [flags]

Request an export from a running hubexport API, follow it with a progress
bar, download the file and check its SHA-256.

TYPE is usage-logs, backup, restore, verify, probe-logs or session (or any API
type name, such as usage_logs, for types added later: pass their params
with --param).

Flags for every type:
  --server URL           the API (env HUBEXPORT_SERVER; default http://localhost:8080)
  --token TOKEN          admin token or CCH API key (env HUBEXPORT_TOKEN)
  --wait                 wait for the job, download and verify the file
  -o, --output FILE      where to save it (default: the job's file name in the
                         current directory; "-" writes to standard output)
  --json                 print the job object (the final one with --wait)
                         instead of the progress bar
  --format FORMAT        output format (usage-logs: csv, csv.gz, xlsx, jsonl,
                         parquet)
  --param KEY=VALUE      set params.KEY; VALUE is read as JSON when it parses
                         (5, true, "5"), else as a string (repeatable)
  --idempotency-key KEY  reuse KEY to make re-running this command safe
                         (default: a new key per run; retries reuse it)
  --timeout DURATION     give up waiting after DURATION (default: never)

usage-logs:  --start, --end (RFC 3339 or epoch ms), --user-id, --key-id,
             --provider-id, --session-id, --model, --endpoint, --status-code,
             --exclude-200, --min-retry-count, --header-lang zh|en, --timezone
probe-logs:  --endpoint-id, --result all|ok|fail, --search, --max-lines,
             --timezone, --start, --end
backup:      --mode full|exclude_logs|ledger_only, --encrypt,
             --age-recipient KEY (age1... or an SSH public key; repeatable)
restore:     --backup-job-id, --upload-id or --upload FILE (upload a dump
             first: its size and SHA-256 are declared, and the restore
             refuses any other bytes), --target-database-url,
             --clean-first, --skip-logs, --dry-run
verify:      --backup-job-id (a restore drill of that backup), --check SQL
             (a SELECT that must return true in the restored copy; repeatable)
session:     --session-id, --sequence, --view before|after, --whole-session

Exit status: 0 done; 1 the API refused, the job failed or the file did not
verify (the message says why); 2 a bad command line.

Example:
  HUBEXPORT_TOKEN=... hubexport export usage-logs --start 2026-01-01T00:00:00Z \
      --format csv.gz --wait -o january.csv.gz
`

// cliTypes maps the command line's type names to the API's.
var cliTypes = map[string]string{
	"usage-logs": "usage_logs",
	"backup":     "database_backup",
	"probe-logs": "probe_logs",
	"session":    "session_request",
	"restore":    "database_restore",
	"verify":     "backup_verify",
}

type paramKind int

const (
	kindString paramKind = iota
	kindInt
	kindBool
	kindInstant // epoch milliseconds or an RFC 3339 string
	kindList    // repeatable: each use appends a string
)

// paramFlag is a flag that sets one of a type's params.
type paramFlag struct {
	flag, key string
	kind      paramKind
	usage     string
}

var (
	startFlag    = paramFlag{"start", "start_time", kindInstant, "from this time, inclusive (RFC 3339 or epoch milliseconds)"}
	endFlag      = paramFlag{"end", "end_time", kindInstant, "until this time, exclusive (RFC 3339 or epoch milliseconds)"}
	timezoneFlag = paramFlag{"timezone", "timezone", kindString, "IANA time zone of the times in the file (default UTC)"}
)

// typeFlags are the param flags of each API type.
var typeFlags = map[string][]paramFlag{
	"usage_logs": {
		startFlag, endFlag, timezoneFlag,
		{"user-id", "user_id", kindInt, "only this user's requests (admins)"},
		{"key-id", "key_id", kindInt, "only requests made with this key"},
		{"provider-id", "provider_id", kindInt, "only this provider's requests (0: never reached a provider)"},
		{"session-id", "session_id", kindString, "only this session's requests"},
		{"model", "model", kindString, "only this model"},
		{"endpoint", "endpoint", kindString, "only this endpoint"},
		{"status-code", "status_code", kindInt, "only this HTTP status"},
		{"exclude-200", "exclude_status_200", kindBool, "leave out status 200"},
		{"min-retry-count", "min_retry_count", kindInt, "only requests retried at least this often"},
		{"header-lang", "header_lang", kindString, "header row language: zh or en"},
	},
	"probe_logs": {
		startFlag, endFlag, timezoneFlag,
		{"endpoint-id", "endpoint_id", kindInt, "only this endpoint"},
		{"result", "result", kindString, "all, ok or fail"},
		{"search", "search", kindString, "text in the error message, error type or status code"},
		{"max-lines", "max_lines", kindInt, "the newest N lines"},
	},
	"database_backup": {
		{"mode", "mode", kindString, "full, exclude_logs or ledger_only"},
		{"encrypt", "encrypt", kindBool, "encrypt the backup with age (to the server's recipients and --age-recipient)"},
		{"age-recipient", "age_recipients", kindList, "also encrypt to this age or SSH public key (repeatable)"},
	},
	"database_restore": {
		{"backup-job-id", "backup_job_id", kindString, "restore the file of this backup job"},
		{"upload-id", "upload_id", kindString, "restore this uploaded dump"},
		{"target-database-url", "target_database_url", kindString, "restore into this database instead of the hub's"},
		{"clean-first", "clean_first", kindBool, "drop the objects before restoring them"},
		{"skip-logs", "skip_logs", kindBool, "leave out message_request rows"},
		{"dry-run", "dry_run", kindBool, "only list the dump's contents"},
	},
	"backup_verify": {
		{"backup-job-id", "backup_job_id", kindString, "drill the file of this backup job"},
		{"check", "checks", kindList, "a SELECT that must return true in the restored copy (repeatable)"},
	},
	"session_request": {
		{"session-id", "session_id", kindString, "the session"},
		{"sequence", "sequence", kindInt, "the request's sequence number in the session"},
		{"view", "view", kindString, "before or after"},
		{"whole-session", "whole_session", kindBool, "every request of the session"},
	},
}

// paramValue is a flag.Value that writes one param.
type paramValue struct {
	params map[string]any
	p      paramFlag
}

func (v *paramValue) String() string   { return "" }
func (v *paramValue) IsBoolFlag() bool { return v.p.kind == kindBool }

func (v *paramValue) Set(s string) error {
	switch v.p.kind {
	case kindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.params[v.p.key] = n
	case kindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("not true or false")
		}
		v.params[v.p.key] = b
	case kindList:
		list, _ := v.params[v.p.key].([]string)
		v.params[v.p.key] = append(list, s)
	case kindInstant:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			v.params[v.p.key] = n
		} else {
			v.params[v.p.key] = s // the API checks it and says what it expects
		}
	default:
		v.params[v.p.key] = s
	}
	return nil
}

// genericParams is --param KEY=VALUE.
type genericParams map[string]any

func (g genericParams) String() string { return "" }

func (g genericParams) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	var j any
	if json.Valid([]byte(v)) && json.Unmarshal([]byte(v), &j) == nil {
		g[k] = j
	} else {
		g[k] = v
	}
	return nil
}

// exportOptions is a parsed export command line.
type exportOptions struct {
	server, token  string
	apiType        string
	format         string
	params         map[string]any
	wait, jsonOut  bool
	output         string
	idempotencyKey string
	timeout        time.Duration
	upload         string // restore: a dump file to upload first
}

func parseExportArgs(args []string, lookup config.Lookup, stderr io.Writer) (*exportOptions, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprint(stderr, exportUsage)
			return nil, flag.ErrHelp
		}
		return nil, usageError{errors.New("name the export type first: usage-logs, backup, restore, verify, probe-logs or session (see hubexport export --help)")}
	}
	o := &exportOptions{params: map[string]any{}, server: "http://localhost:8080"}
	o.apiType = args[0]
	if t, ok := cliTypes[o.apiType]; ok {
		o.apiType = t
	} else if !validTypeName(o.apiType) {
		return nil, usageError{fmt.Errorf("unknown export type %q; use usage-logs, backup, restore, verify, probe-logs or session", args[0])}
	}
	if v, ok := lookup("HUBEXPORT_SERVER"); ok && v != "" {
		o.server = v
	}
	if v, ok := lookup("HUBEXPORT_TOKEN"); ok {
		o.token = v
	}

	fs := flag.NewFlagSet("hubexport export "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", o.server, "")
	fs.StringVar(&o.token, "token", o.token, "")
	fs.BoolVar(&o.wait, "wait", false, "")
	fs.BoolVar(&o.jsonOut, "json", false, "")
	fs.StringVar(&o.output, "o", "", "")
	fs.StringVar(&o.output, "output", "", "")
	fs.StringVar(&o.format, "format", "", "")
	fs.StringVar(&o.idempotencyKey, "idempotency-key", "", "")
	fs.DurationVar(&o.timeout, "timeout", 0, "")
	for _, p := range typeFlags[o.apiType] {
		fs.Var(&paramValue{params: o.params, p: p}, p.flag, p.usage)
	}
	fs.Var(genericParams(o.params), "param", "")
	if o.apiType == "database_restore" {
		fs.StringVar(&o.upload, "upload", "", "")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, exportUsage)
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q (flags come after the type; values with spaces need quotes)", fs.Arg(0))}
	}
	u, err := url.Parse(o.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--server %q: want the API's http(s) URL, such as http://localhost:8080", o.server)}
	}
	o.server = strings.TrimRight(o.server, "/")
	o.token = strings.TrimSpace(o.token)
	if o.token == "" {
		return nil, usageError{errors.New("no token: pass --token or set HUBEXPORT_TOKEN (the admin token or a CCH API key)")}
	}
	if o.output != "" && !o.wait {
		return nil, usageError{errors.New("-o needs --wait: without it the command only requests the export")}
	}
	if o.output == "-" && o.jsonOut {
		return nil, usageError{errors.New("-o - and --json both write to standard output; choose one")}
	}
	if o.timeout < 0 {
		return nil, usageError{errors.New("--timeout must not be negative")}
	}
	if o.upload != "" && (o.params["upload_id"] != nil || o.params["backup_job_id"] != nil) {
		return nil, usageError{errors.New("--upload restores the file it uploads: do not also give --upload-id or --backup-job-id")}
	}
	return o, nil
}

func validTypeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// exportCommand runs "hubexport export" and returns the exit status. It is
// a client of the API and needs none of the server's configuration.
func exportCommand(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) int {
	o, err := parseExportArgs(args, lookup, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "hubexport export: %v\n", err)
		return 2
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	c := &client{base: o.server, token: o.token, http: &http.Client{}, stderr: stderr, quiet: o.jsonOut}
	if err := c.run(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "hubexport export: %v\n", err)
		return 1
	}
	return 0
}

// resultRaw is the job's "result" member as the API sent it.
func resultRaw(j *apiclient.Job) json.RawMessage {
	var v struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(j.Raw, &v) != nil || len(v.Result) == 0 {
		return json.RawMessage("null")
	}
	return v.Result
}

// client is the export and schedule commands' side of the API client: what
// they print and the files they write.
type client struct {
	base   string
	token  string
	http   *http.Client
	stderr io.Writer
	quiet  bool // --json: no bar, no chatter
}

func (c *client) api() *apiclient.Client {
	return &apiclient.Client{BaseURL: c.base, Token: c.token, HTTPClient: c.http}
}

// request sends an API request and returns the body of a 2xx answer, or
// an *apiclient.APIError.
func (c *client) request(ctx context.Context, method, path string, body []byte, hdr map[string]string) ([]byte, error) {
	var h http.Header
	if len(hdr) > 0 {
		h = http.Header{}
		for k, v := range hdr {
			h.Set(k, v)
		}
	}
	return c.api().Call(ctx, method, path, body, h)
}

func (c *client) run(ctx context.Context, o *exportOptions, stdout io.Writer) error {
	api := c.api()
	if o.upload != "" {
		id, err := c.uploadDump(ctx, api, o.upload)
		if err != nil {
			return err
		}
		o.params["upload_id"] = id
	}
	key := o.idempotencyKey
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		key = "cli-" + hex.EncodeToString(b[:])
	}
	job, err := api.CreateExport(ctx, apiclient.ExportRequest{Type: o.apiType, Format: o.format, Params: o.params, IdempotencyKey: key,
		OnRetry: func(err error) { c.say("create the export: %v; trying again\n", err) }})
	if err != nil {
		return err
	}
	if !o.wait {
		if o.jsonOut {
			return printJSON(stdout, job.Raw)
		}
		_, err := fmt.Fprintln(stdout, job.ID)
		return err
	}
	c.say("export %s %s\n", job.ID, job.Status)

	bar := c.newJobBar()
	bar.update(job)
	job, err = api.WaitJob(ctx, job, bar.update)
	if err != nil {
		bar.stop(false)
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting (%w); job %s goes on: GET %s/api/v1/exports/%s", context.Cause(ctx), job.ID, c.base, job.ID)
		}
		return err
	}
	bar.stop(job.Status == apiclient.StatusSucceeded)
	if job.Status != apiclient.StatusSucceeded {
		if o.jsonOut {
			_ = printJSON(stdout, job.Raw)
		}
		if e := job.Error; e != nil && e.Detail != "" {
			return fmt.Errorf("job %s %s: %s: %s (%s)", job.ID, job.Status, e.Message, e.Detail, e.Code)
		}
		if e := job.Error; e != nil {
			return fmt.Errorf("job %s %s: %s (%s)", job.ID, job.Status, e.Message, e.Code)
		}
		return fmt.Errorf("job %s %s", job.ID, job.Status)
	}
	if job.Result == nil || job.Result.SHA256 == "" {
		// A type that makes no file (a restore): its result is the report.
		if o.jsonOut {
			return printJSON(stdout, job.Raw)
		}
		c.say("job %s succeeded\n", job.ID)
		return printJSON(c.stderr, resultRaw(job))
	}
	path, err := c.download(ctx, api, job, o.output, stdout)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(stdout, job.Raw)
	}
	if path != "" {
		c.say("%s\n", savedLine(path, job))
	}
	return nil
}

// savedLine is the last line of a download: the file, its size, what it
// holds when that is counted in something other than bytes (a backup's
// progress is its bytes: a second count would repeat the size, or say 0),
// and the checksum.
func savedLine(path string, job *apiclient.Job) string {
	what := ""
	if unit := orDefault(job.Progress.Unit, "rows"); unit != "bytes" {
		what = fmt.Sprintf(", %d %s", job.Result.Rows, unit)
	}
	return fmt.Sprintf("saved %s (%d bytes%s, sha256 %s verified)", path, job.Result.SizeBytes, what, job.Result.SHA256)
}

func (c *client) say(format string, args ...any) {
	if !c.quiet {
		fmt.Fprintf(c.stderr, format, args...)
	}
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// download fetches the job's file through a signed link into output,
// checking its size and SHA-256 against the job before it appears under
// its name. It returns the path written ("" for standard output).
func (c *client) download(ctx context.Context, api *apiclient.Client, job *apiclient.Job, output string, stdout io.Writer) (string, error) {
	link, err := api.DownloadLink(ctx, job.ID)
	if err != nil {
		return "", err
	}

	path := output
	toStdout := output == "-"
	// A device or a pipe (-o /dev/null, a FIFO) is written to as it is, like
	// standard output; a file is replaced atomically by a rename, which would
	// put a regular file in a device's place.
	special := false
	if fi, err := os.Stat(path); !toStdout && path != "" && err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return "", fmt.Errorf("-o %s is a directory; give a file name", path)
		}
		special = true
	}
	dir := "."
	switch {
	case toStdout, special:
		dir = ""
	case path == "":
		path = safeFilename(job.Result.Filename, job.ID)
		fallthrough
	default:
		dir = filepath.Dir(path)
	}
	var tmp *os.File
	if dir == "" {
		// Only a staging copy for standard output or a device: private.
		tmp, err = os.CreateTemp(dir, "."+safeFilename(job.Result.Filename, job.ID)+".*.part")
	} else {
		// Renamed into place: created 0666 less the umask, as curl -o and
		// wget create files.
		tmp, err = createPart(dir, "."+safeFilename(job.Result.Filename, job.ID)+".", ".part")
	}
	if err != nil {
		return "", fmt.Errorf("create the file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	var bar *progressbar.ProgressBar
	var progress func(int64)
	if !c.quiet {
		// Made once the file starts coming, as the upload's bar.
		progress = func(n int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(job.Result.SizeBytes,
					progressbar.OptionSetWriter(c.stderr), progressbar.OptionSetDescription("download"),
					progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.stderr) }))
			}
			if n > 0 {
				_ = bar.Set64(n)
			}
		}
	}
	err = api.DownloadFrom(ctx, link, job, tmp, progress)
	var mismatch *apiclient.ChecksumError
	if (err == nil || errors.As(err, &mismatch)) && bar != nil && !bar.IsFinished() {
		_ = bar.Exit()
	}
	if mismatch != nil {
		return "", fmt.Errorf("%w; nothing was saved, run the command again", err)
	}
	if err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("save the file: %w", err)
	}
	if toStdout {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		if _, err := io.Copy(stdout, tmp); err != nil {
			return "", fmt.Errorf("write to standard output: %w", err)
		}
		return "", nil
	}
	if special {
		return path, copyInto(path, tmp)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("save the file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("save the file: %w", err)
	}
	keep = true
	return path, nil
}

// createPart creates a new file dir/prefix<random>suffix with mode 0666
// less the umask (os.CreateTemp always makes 0600).
func createPart(dir, prefix, suffix string) (*os.File, error) {
	for range 100 {
		var b [6]byte
		_, _ = rand.Read(b[:])
		f, err := os.OpenFile(filepath.Join(dir, prefix+hex.EncodeToString(b[:])+suffix), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, os.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
}

// safeFilename keeps the server's file name to one plain name in the
// current directory.
func safeFilename(name, id string) string {
	name = filepath.Base(filepath.FromSlash(name))
	if name == "." || name == ".." || name == string(filepath.Separator) || name == "" || strings.HasPrefix(name, ".") {
		return id
	}
	return name
}

// jobBar shows a job's progress on standard error. With a total it is a
// bar whose scale is tenths of a percent (the API keeps percent below 100
// until the job has ended, so the bar never shows done early); without one
// (a backup: the database's size is no measure of its compressed dump) it is
// a spinner beside the count, with no percent and no made-up total. The bar
// is made at the first update, when it is known which of the two it is.
type jobBar struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	spin  bool
	final *apiclient.Job // the ended job, drawn by stop
}

func (c *client) newJobBar() *jobBar {
	if c.quiet {
		return &jobBar{}
	}
	return &jobBar{w: c.stderr}
}

func (b *jobBar) start(j *apiclient.Job) {
	max := int64(1000)
	b.spin = false
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		// An ended job's bar is drawn by stop, full: never blank first.
		progressbar.OptionSetRenderBlankState(!j.Ended()),
		progressbar.OptionSetDescription(progressText(j)),
	}
	if j.Progress.Total <= 0 && !j.Ended() {
		max, b.spin = -1, true
		// No spinner goroutine of the library's own: it would draw while
		// stop writes the line's end. The spinner turns with each update.
		opts = append(opts, progressbar.OptionSpinnerType(14), progressbar.OptionSetSpinnerChangeInterval(0))
	}
	b.bar = progressbar.NewOptions64(max, opts...)
}

func (b *jobBar) update(j *apiclient.Job) {
	if b.w == nil {
		return
	}
	if b.bar != nil && b.spin && j.Progress.Total > 0 && !j.Ended() && !b.bar.IsFinished() {
		_ = b.bar.Clear() // the count turned out to have a total: a bar from now on
		b.bar = nil
	}
	if b.bar == nil {
		b.start(j)
	}
	if b.bar.IsFinished() {
		return
	}
	if j.Ended() {
		// Drawn by stop, with the bar full when it succeeded: never
		// "succeeded" at the percent last seen.
		b.final = j
		return
	}
	// Describe draws at once: a new status or phase shows even when the
	// next event is long in coming (a backup waiting for its lock).
	b.bar.Describe(progressText(j))
	if !b.spin {
		_ = b.bar.Set64(min(int64(j.Progress.Percent*10), 999))
	}
}

// stop ends the bar: full when the job succeeded, left where it was else,
// described by the job's final state.
func (b *jobBar) stop(done bool) {
	if b.bar == nil || b.bar.IsFinished() {
		return
	}
	if done && b.spin && b.final != nil && b.final.Progress.Total > 0 {
		// It ended before a total was seen (a small export, queued until
		// done): drawn full, as any job that succeeded.
		_ = b.bar.Clear()
		b.start(b.final)
	}
	if done {
		_ = b.bar.Finish()
		if b.final != nil {
			b.bar.Describe(progressText(b.final)) // a finished bar is drawn again, as it is
		}
	} else {
		if b.final != nil {
			b.bar.Describe(progressText(b.final))
		}
		_ = b.bar.Exit()
	}
	fmt.Fprintln(b.w)
}

// progressText is the job's state and count as the bar's description.
func progressText(j *apiclient.Job) string {
	p := j.Progress
	desc := string(j.Status)
	count := func(n int64) string {
		if p.Unit == "bytes" {
			return humanBytes(n)
		}
		return fmt.Sprintf("%d %s", n, p.Unit)
	}
	switch {
	case p.Note != "":
		desc += ": " + p.Note
	case p.Total > 0 && p.Unit == "bytes":
		desc += fmt.Sprintf(" %s of %s", humanBytes(p.Done), humanBytes(p.Total))
	case p.Total > 0:
		desc += fmt.Sprintf(" %d/%d %s", p.Done, p.Total, p.Unit)
	case p.Done > 0:
		desc += " " + count(p.Done)
	}
	return desc
}

// humanBytes is n in B, kB, MB, GB or TB (powers of 1000, as the download
// bar counts).
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n), ""
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		v, unit = v/1000, u
		if v < 1000 {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// uploadDump uploads a dump for a restore: it declares the file's size and
// SHA-256, then PUTs it to the URL it gets with the headers that URL asks
// for. It returns the upload id.
func (c *client) uploadDump(ctx context.Context, api *apiclient.Client, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--upload: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("--upload %s: not a regular file", path)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("--upload: read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	var bar *progressbar.ProgressBar
	var progress func(int64)
	if !c.quiet {
		// Made once the upload URL is known and the bytes start going.
		progress = func(n int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(size,
					progressbar.OptionSetWriter(c.stderr), progressbar.OptionSetDescription("upload"),
					progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.stderr) }))
			}
			if n > 0 {
				_ = bar.Set64(n)
			}
		}
	}
	id, err := api.UploadDump(ctx, path, f, size, sum, progress)
	if bar != nil && !bar.IsFinished() {
		_ = bar.Exit()
	}
	if err != nil {
		return "", err
	}
	c.say("uploaded %s as %s (%d bytes, sha256 %s)\n", path, id, size, sum)
	return id, nil
}

// copyInto writes the verified download in tmp to the device or pipe at
// path, without replacing it.
func copyInto(path string, tmp *os.File) error {
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("save the file: %w", err)
	}
	if _, err := io.Copy(out, tmp); err != nil {
		out.Close()
		return fmt.Errorf("write to %s: %w", path, err)
	}
	return out.Close()
}
