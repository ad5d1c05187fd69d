package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCleanStopLogsNoError: serve, having run a backup, stops on SIGTERM
// with exit status 0 and not one ERROR line, every role saying it stopped;
// the backup's log lines name each key once.
func TestCleanStopLogsNoError(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	p := s.start("serve")
	if j := s.finish(s.backup("exclude_logs"), time.Minute); j.Status != "succeeded" {
		t.Fatalf("backup: %s %+v", j.Status, j.Error)
	}
	p.Stop(t)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
	logs := p.Logs()
	for _, want := range []string{`"msg":"shutting_down"`, `"msg":"api_stopped"`, `"msg":"scheduler_stopped"`, `"msg":"worker_stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("a clean stop logged an error: %s", line)
		}
		if strings.Contains(line, `"msg":"pg_dump_start"`) && strings.Count(line, `"mode":`) != 1 {
			t.Errorf("pg_dump_start names mode %d times: %s", strings.Count(line, `"mode":`), line)
		}
		if k := repeatedKey(line); k != "" {
			t.Errorf("key %q twice in: %s", k, line)
		}
	}
	if len(events(t, "pg_dump_start", p)) != 1 {
		t.Errorf("no pg_dump_start line")
	}
}

// repeatedKey is a key that a JSON log line's top-level object names
// twice ("" if none, or if the line is not a JSON object).
func repeatedKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

func TestRepeatedKey(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]string{
		`{"msg":"a","mode":"full","x":{"mode":1},"mode":"full"}`: "mode",
		`{"msg":"a","mode":"full","x":{"mode":1}}`:               "",
		`not json`: "",
	} {
		if got := repeatedKey(line); got != want {
			t.Errorf("repeatedKey(%s) = %q, want %q", line, got, want)
		}
	}
}
