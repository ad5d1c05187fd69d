package localserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a server started by Start. Its output goes to a log file rather than a pipe: a
// pipe would keep cmd.Wait blocked while grandchildren (Postgres backends) hold it open.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
}

// ErrExited is wrapped by WaitReady when the process ended before it was ready.
var ErrExited = errors.New("exited during startup")

// ErrNotInstalled is wrapped by the errors of a missing binary or OS user.
var ErrNotInstalled = errors.New("not installed")

// Start starts bin in dir, in its own process group with SIGKILL as its parent-death signal,
// so it cannot outlive this process; its output is appended to logPath. cred, when set, runs
// it as another user; env nil is this process's environment.
func Start(name, logPath, dir string, cred *syscall.Credential, env []string, bin string, args ...string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localserver: %s log: %w", name, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Credential is applied before Pdeathsig in the child, so the signal survives the uid change.
	// runuser would not do: it forks, and its child outlives a killed runuser. Its own process
	// group keeps a terminal's Ctrl-C away from it: the parent decides when it stops.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localserver: start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Success tells whether the process has exited with status 0.
func (p *Process) Success() bool {
	select {
	case <-p.done:
		return p.cmd.ProcessState.Success()
	default:
		return false
	}
}

// State describes how the process ended ("exit status 1"); "" while it runs.
func (p *Process) State() string {
	select {
	case <-p.done:
		return p.cmd.ProcessState.String()
	default:
		return ""
	}
}

// WaitReady polls probe until it succeeds, the process exits or timeout passes. Errors carry
// the tail of the server's log.
func (p *Process) WaitReady(timeout time.Duration, probe func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := probe(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("localserver: %s %w (%v)\n--- %s ---\n%s", p.name, ErrExited, p.cmd.ProcessState, p.logPath, p.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localserver: %s not ready after %v: %v\n--- %s ---\n%s", p.name, timeout, err, p.logPath, p.LogTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PortTaken tells whether a startup failure looks like losing the race for a free port.
func (p *Process) PortTaken() bool {
	return strings.Contains(strings.ToLower(p.LogTail()), "in use")
}

// Stop sends sig to the process group, waits up to grace, then kills the group. The final
// SIGKILL also reaches grandchildren left behind by a leader that already exited.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// LogTail is the last 8 KiB of the process's log.
func (p *Process) LogTail() string {
	return fileTail(p.logPath, 8<<10)
}

func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// FreePort asks the kernel for a free loopback port. Another process may take it before the
// server binds it; callers retry on "address in use" (PortTaken).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localserver: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// IsExecutable tells whether path is an executable regular file.
func IsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
