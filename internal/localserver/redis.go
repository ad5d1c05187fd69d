package localserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a throwaway redis-server: no persistence, loopback only.
type Redis struct {
	Addr string // 127.0.0.1:port
	URL  string // redis://127.0.0.1:port/0

	bin, dir string
	port     int
	proc     *Process
}

// RedisBinary finds redis-server on PATH. Its error wraps ErrNotInstalled.
func RedisBinary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("localserver: redis-server %w: not found in PATH (Debian: apt-get install redis-server)", ErrNotInstalled)
	}
	return bin, nil
}

// StartRedis starts redis-server on a free port with dir (which must exist) as its working
// directory; its log is dir/redis.log.
func StartRedis(dir string) (*Redis, error) {
	bin, err := RedisBinary()
	if err != nil {
		return nil, err
	}
	s := &Redis{bin: bin, dir: dir}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Process is the running redis-server.
func (s *Redis) Process() *Process { return s.proc }

// Stop kills the server: it holds nothing worth a graceful shutdown.
func (s *Redis) Stop() { s.proc.Stop(syscall.SIGKILL, 0) }

// Restart kills the server and starts it again on the same port; its data is lost.
func (s *Redis) Restart() error {
	s.Stop()
	return s.start()
}

func (s *Redis) start() error {
	restart := s.port != 0
	for attempt := 1; ; attempt++ {
		if !restart {
			port, err := FreePort()
			if err != nil {
				return err
			}
			s.port = port
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			s.URL = "redis://" + s.Addr + "/0"
		}
		proc, err := Start("redis-server", filepath.Join(s.dir, "redis.log"), s.dir, nil, nil, s.bin,
			"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
		if err != nil {
			return err
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
		// Ask the server for its directory: under load, a server somebody else started on the
		// same port can answer before this one has failed to bind and exited.
		err = proc.WaitReady(10*time.Second, func(ctx context.Context) error {
			dir, err := c.ConfigGet(ctx, "dir").Result()
			if err != nil {
				return err
			}
			want, err := filepath.EvalSymlinks(s.dir) // the server reports its working directory
			if err != nil {
				return err
			}
			if got := filepath.Clean(dir["dir"]); got != want {
				return fmt.Errorf("localserver: port %d answers for another redis-server (dir %s)", s.port, got)
			}
			return nil
		})
		_ = c.Close()
		if err == nil {
			s.proc = proc
			return nil
		}
		proc.Stop(syscall.SIGKILL, 0)
		if restart || attempt == 3 || !errors.Is(err, ErrExited) || !proc.PortTaken() {
			return err
		}
	}
}
