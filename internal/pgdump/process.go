package pgdump

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	tailLines = 20   // stderr lines kept for an error message
	maxLine   = 4096 // longer stderr lines (a failed statement's text) are cut
	// waitDelay bounds how long Wait waits for the pipes after the process ended or was
	// killed: a stray grandchild holding stderr must not hang the job.
	waitDelay = 5 * time.Second
)

// command prepares a tool run: no shell, its own process group (a cancelled ctx kills the
// group, so nothing it started survives), stdin from /dev/null, the connection's settings in
// its environment.
func command(ctx context.Context, path string, args []string, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = waitDelay
	return cmd
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return nil
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// lineWriter is a tool's stderr: it splits lines, blanks the password out of them (libpq
// should never print it; this is in case it ever does), hands each to fn and keeps the last
// tailLines.
type lineWriter struct {
	secret string
	fn     func(string)

	mu   sync.Mutex
	buf  []byte
	tail []string
}

func newLineWriter(secret string, fn func(string)) *lineWriter {
	// Blanking a one- or two-character password would garble every line.
	if len(secret) < 3 {
		secret = ""
	}
	return &lineWriter{secret: secret, fn: fn}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(w.buf); room > 0 {
			w.buf = append(w.buf, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		w.emitLocked()
		p = p[i+1:]
	}
	return n, nil
}

// flush emits a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emitLocked()
	}
}

func (w *lineWriter) emitLocked() {
	line := strings.TrimRight(string(w.buf), "\r")
	w.buf = w.buf[:0]
	if w.secret != "" {
		line = strings.ReplaceAll(line, w.secret, "********")
	}
	if len(w.tail) == tailLines {
		w.tail = w.tail[1:]
	}
	w.tail = append(w.tail, line)
	if w.fn != nil {
		w.fn(line)
	}
}

func (w *lineWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}

// errorLines picks the lines of tail that say what went wrong, or the last few when none does.
func errorLines(tail []string) []string {
	var out []string
	for _, l := range tail {
		if strings.Contains(strings.ToLower(l), "error:") || strings.Contains(l, "FATAL:") {
			out = append(out, stripProg(strings.TrimSpace(l)))
		}
	}
	if len(out) == 0 && len(tail) > 0 {
		out = tail[max(0, len(tail)-3):]
	}
	return out
}

// stripProg drops the "pg_restore: error: " a tool puts before its messages: the error that
// quotes the line already names the tool.
func stripProg(line string) string {
	if m := progPrefix.FindStringIndex(line); m != nil {
		return line[m[1]:]
	}
	return line
}

var progPrefix = regexp.MustCompile(`^pg_(?:dump|restore): (?:error: )?`)

func (t *Tools) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}
