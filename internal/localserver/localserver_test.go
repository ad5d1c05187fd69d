package localserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestTempDirSweepsDirectoriesOfDeadProcesses(t *testing.T) {
	prefix := "hxt-localserver-test-"
	// A process that has exited: its pid is free (until reused, which the sweep then spares).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(os.TempDir(), prefix+strconv.Itoa(cmd.Process.Pid)+"-x")
	alive := filepath.Join(os.TempDir(), prefix+strconv.Itoa(os.Getppid())+"-x")
	for _, d := range []string{dead, alive} {
		if err := os.MkdirAll(filepath.Join(d, "pg"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = os.RemoveAll(alive) })

	dir, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("new dir %s: %v, mode %v", dir, err, fi.Mode())
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the directory of a dead process is still there: %v", err)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("the directory of a live process was removed: %v", err)
	}
}

func TestRedisStopLeavesNoProcess(t *testing.T) {
	if _, err := RedisBinary(); err != nil {
		t.Skip(err)
	}
	s, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.Process().Pid()
	s.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("redis-server %d still runs after Stop", pid)
	}
}
