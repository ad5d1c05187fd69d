package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/hubexport/hubexport/internal/config"
)

const scheduleUsage = `usage: hubexport schedule create TYPE --name NAME --cron SPEC [flags]
       hubexport schedule list [--json]
       hubexport schedule pause|resume|delete ID

Manage schedules on a running hubexport API: each slot of the cron spec
makes one export job, announced by the webhook events of any export.

TYPE is usage-logs, probe-logs or backup (or an API type name).

Flags of create:
  --server URL, --token TOKEN   as for hubexport export (env HUBEXPORT_SERVER,
                                HUBEXPORT_TOKEN)
  --name NAME                   the schedule's name (default: TYPE and window)
  --cron SPEC                   5 fields, such as '0 1 1 * *' (required)
  --timezone ZONE               IANA zone of the cron spec and window (default UTC)
  --window WINDOW               previous_hour, previous_day, previous_week,
                                previous_month, or since_last (an incremental
                                feed of usage-logs: each row in exactly one file)
  --format FORMAT               the files' format (usage-logs: csv, csv.gz, xlsx, jsonl)
  --keep-last N                 keep the newest N files (default 7)
  --max-age-days N              delete files older than N days (0: no limit)
  --disabled                    create it paused
  --json                        print the schedule object
  the type's param flags of hubexport export (--user-id, --model,
  --header-lang, --mode, ...) and --param KEY=VALUE

Example:
  hubexport schedule create usage-logs --name monthly --cron '0 1 1 * *' \
      --timezone Asia/Shanghai --window previous_month --format xlsx
`

// scheduleCommand runs "hubexport schedule" and returns the exit status.
// Like export, it is a client of the API.
func scheduleCommand(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) int {
	err := runSchedule(ctx, args, lookup, stdout, stderr)
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hubexport schedule: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "hubexport schedule: %v\n", err)
		return 1
	}
	return 0
}

func runSchedule(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, scheduleUsage)
		if len(args) == 0 {
			return usageError{errors.New("name a subcommand: create, list, pause, resume or delete")}
		}
		return flag.ErrHelp
	}
	sub, rest := args[0], args[1:]
	server, token := "http://localhost:8080", ""
	if v, ok := lookup("HUBEXPORT_SERVER"); ok && v != "" {
		server = v
	}
	if v, ok := lookup("HUBEXPORT_TOKEN"); ok {
		token = v
	}
	fs := flag.NewFlagSet("hubexport schedule "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&server, "server", server, "")
	fs.StringVar(&token, "token", token, "")
	jsonOut := fs.Bool("json", false, "")

	var (
		body    = map[string]any{}
		params  = map[string]any{}
		apiType string
	)
	switch sub {
	case "create":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usageError{errors.New("name the export type first: usage-logs, probe-logs or backup")}
		}
		apiType = rest[0]
		if t, ok := cliTypes[apiType]; ok {
			apiType = t
		} else if !validTypeName(apiType) {
			return usageError{fmt.Errorf("unknown export type %q; use usage-logs, probe-logs or backup", rest[0])}
		}
		rest = rest[1:]
		name, cron, tz, window, format := fs.String("name", "", ""), fs.String("cron", "", ""), fs.String("timezone", "", ""),
			fs.String("window", "", ""), fs.String("format", "", "")
		keepLast, maxAge := fs.Int("keep-last", 0, ""), fs.Int("max-age-days", -1, "")
		disabled := fs.Bool("disabled", false, "")
		for _, p := range typeFlags[apiType] {
			if p.key == "timezone" {
				p.flag = "file-timezone" // --timezone is the schedule's
			}
			fs.Var(&paramValue{params: params, p: p}, p.flag, p.usage)
		}
		fs.Var(genericParams(params), "param", "")
		if err := parseScheduleFlags(fs, rest, 0); err != nil {
			return err
		}
		if *cron == "" {
			return usageError{errors.New("--cron is required, such as --cron '0 1 1 * *'")}
		}
		if *name == "" {
			*name = strings.TrimSpace(args[1] + " " + strings.ReplaceAll(*window, "_", " "))
		}
		body["name"], body["cron"] = *name, *cron
		if *tz != "" {
			body["timezone"] = *tz
		}
		if *window != "" {
			body["window"] = *window
		}
		retention := map[string]any{}
		if *keepLast > 0 {
			retention["keep_last"] = *keepLast
		}
		if *maxAge >= 0 {
			retention["max_age_days"] = *maxAge
		}
		if len(retention) > 0 {
			body["retention"] = retention
		}
		if *disabled {
			body["enabled"] = false
		}
		body["job"] = map[string]any{"type": apiType, "format": *format, "params": params}
	case "list":
		if err := parseScheduleFlags(fs, rest, 0); err != nil {
			return err
		}
	case "pause", "resume", "delete":
		if err := parseScheduleFlags(fs, rest, 1); err != nil {
			return err
		}
	default:
		return usageError{fmt.Errorf("unknown subcommand %q; use create, list, pause, resume or delete", sub)}
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("--server %q: want the API's http(s) URL, such as http://localhost:8080", server)}
	}
	if token = strings.TrimSpace(token); token == "" {
		return usageError{errors.New("no token: pass --token or set HUBEXPORT_TOKEN (the admin token or a CCH API key)")}
	}
	c := &client{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{}, stderr: stderr, quiet: true}

	switch sub {
	case "create":
		raw, err := c.scheduleCall(ctx, http.MethodPost, "/api/v1/schedules", body)
		if err != nil {
			return err
		}
		return printSchedule(stdout, raw, *jsonOut)
	case "list":
		return c.listSchedules(ctx, stdout, *jsonOut)
	case "pause", "resume":
		raw, err := c.scheduleCall(ctx, http.MethodPatch, "/api/v1/schedules/"+url.PathEscape(fs.Arg(0)), map[string]any{"enabled": sub == "resume"})
		if err != nil {
			return err
		}
		return printSchedule(stdout, raw, *jsonOut)
	default: // delete
		if _, err := c.scheduleCall(ctx, http.MethodDelete, "/api/v1/schedules/"+url.PathEscape(fs.Arg(0)), nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", fs.Arg(0))
		return nil
	}
}

// parseScheduleFlags parses args into fs, wanting exactly n positional
// arguments (flags may come before or after them).
func parseScheduleFlags(fs *flag.FlagSet, args []string, n int) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		if n == 0 {
			return usageError{fmt.Errorf("unexpected argument %q (values with spaces need quotes)", pos[0])}
		}
		return usageError{errors.New("name the schedule: its id, such as sch_01KAXRR7Q9G7M1V4J3Z6TQ8W5N")}
	}
	return fs.Parse(pos) // leaves them as fs.Args()
}

// scheduleCall sends body (nil: none) and returns the answer.
func (c *client) scheduleCall(ctx context.Context, method, path string, body any) ([]byte, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	return c.request(ctx, method, path, b, nil)
}

// cliSchedule is what the list shows of a schedule.
type cliSchedule struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	Job      struct {
		Type   string `json:"type"`
		Format string `json:"format"`
	} `json:"job"`
	Window         string  `json:"window"`
	Enabled        bool    `json:"enabled"`
	NextRunAt      *string `json:"next_run_at"`
	DisabledReason string  `json:"disabled_reason"`
}

func printSchedule(w io.Writer, raw []byte, asJSON bool) error {
	if asJSON {
		return printJSON(w, raw)
	}
	var s cliSchedule
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	scheduleRow(tw, s)
	return tw.Flush()
}

func scheduleRow(w io.Writer, s cliSchedule) {
	state := "enabled"
	if !s.Enabled {
		state = "paused"
		if s.DisabledReason != "" {
			state = "disabled: " + s.DisabledReason
		}
	}
	next := "-"
	if s.NextRunAt != nil {
		next = *s.NextRunAt
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Job.Type+"/"+s.Job.Format, orDefault(s.Window, "-"),
		s.Cron+" "+s.Timezone, next, state)
}

func (c *client) listSchedules(ctx context.Context, w io.Writer, asJSON bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintf(tw, "ID\tNAME\tJOB\tWINDOW\tCRON\tNEXT RUN\tSTATE\n")
	}
	cursor := ""
	var all []json.RawMessage
	for {
		path := "/api/v1/schedules?limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		raw, err := c.request(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return err
		}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		for _, r := range page.Data {
			if asJSON {
				all = append(all, r)
				continue
			}
			var s cliSchedule
			if err := json.Unmarshal(r, &s); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			scheduleRow(tw, s)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if asJSON {
		if all == nil {
			all = []json.RawMessage{}
		}
		b, err := json.Marshal(all)
		if err != nil {
			return err
		}
		return printJSON(w, b)
	}
	return tw.Flush()
}
