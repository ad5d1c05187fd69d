package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a server child of the test binary. Its output goes to a log file rather than a pipe:
// a pipe would keep cmd.Wait blocked while grandchildren (Postgres backends) hold it open.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
}

var errExited = errors.New("exited during startup")

// startProcess starts bin in its own process group with SIGKILL as its parent-death signal, so
// it cannot outlive the test binary. cred, when set, runs it as another user.
func startProcess(name, logPath, dir string, cred *syscall.Credential, env []string, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s log: %w", name, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Credential is applied before Pdeathsig in the child, so the signal survives the uid change.
	// runuser would not do: it forks, and its child outlives a killed runuser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls probe until it succeeds, the process exits or timeout passes. Errors carry
// the tail of the server's log.
func (p *process) waitReady(timeout time.Duration, probe func(ctx context.Context) error) error {
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
			return fmt.Errorf("testenv: %s %w (%v)\n--- %s ---\n%s", p.name, errExited, p.cmd.ProcessState, p.logPath, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v: %v\n--- %s ---\n%s", p.name, timeout, err, p.logPath, p.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// portTaken tells whether a startup failure looks like losing the race for a free port.
func (p *process) portTaken() bool {
	return strings.Contains(strings.ToLower(p.logTail()), "in use")
}

// stop sends sig to the process group, waits up to grace, then kills the group. The final
// SIGKILL also reaches grandchildren left behind by a leader that already exited.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

func (p *process) logTail() string {
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
