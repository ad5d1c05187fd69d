package main

import (
	"bufio"
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
	}
	if len(events(t, "pg_dump_start", p)) != 1 {
		t.Errorf("no pg_dump_start line")
	}
}
