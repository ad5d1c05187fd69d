package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ownerFile is the file inside a scratch directory its process keeps locked.
const ownerFile = ".owner"

// UnlockedAge is how old an entry without a lock (made before locks were
// taken, or caught between its creation and its lock) must be before Sweep
// removes it.
const UnlockedAge = 6 * time.Hour

// Dir is a scratch directory locked by this process.
type Dir struct {
	Path  string
	owner *os.File
}

// MkdirTemp creates a directory in parent (os.TempDir() when empty) named
// prefix, this process's id, a dash and a random part, and locks it. It is
// made under a hidden name and renamed once locked, so Sweep never sees it
// unlocked.
func MkdirTemp(parent, prefix string) (*Dir, error) {
	hidden, err := os.MkdirTemp(parent, fmt.Sprintf(".%s%d-", prefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(hidden, ownerFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		if err = lock(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(hidden)
		return nil, fmt.Errorf("scratch: lock %s: %w", hidden, err)
	}
	path := unhide(hidden)
	if err := os.Rename(hidden, path); err != nil {
		f.Close()
		_ = os.RemoveAll(hidden)
		return nil, fmt.Errorf("scratch: %w", err)
	}
	return &Dir{Path: path, owner: f}, nil
}

func unhide(path string) string {
	return filepath.Join(filepath.Dir(path), strings.TrimPrefix(filepath.Base(path), "."))
}

// Remove deletes the directory and lets its lock go. Calls after the first
// do nothing.
func (d *Dir) Remove() error {
	if d.owner == nil {
		return nil
	}
	err := os.RemoveAll(d.Path)
	if cerr := d.owner.Close(); err == nil {
		err = cerr
	}
	d.owner = nil
	return err
}

func lock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// Sweep removes from parent (os.TempDir() when empty) the entries whose
// name starts with one of prefixes and that no live process holds: their
// lock is free, or they have none and are older than UnlockedAge. It
// returns the paths it removed.
func Sweep(parent string, prefixes ...string) ([]string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("scratch: sweep %s: %w", parent, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !hasPrefix(e.Name(), prefixes) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if !abandoned(path, e) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("scratch: sweep %s: %w", parent, err)
	}
	return removed, nil
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// abandoned reports whether the entry's process is gone: its lock can be
// taken (and is let go again at once), or it has none and is old.
func abandoned(path string, e fs.DirEntry) bool {
	lockPath := path
	if e.IsDir() {
		lockPath = filepath.Join(path, ownerFile)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR, 0)
	if err != nil {
		info, ierr := e.Info()
		return errors.Is(err, fs.ErrNotExist) && ierr == nil && time.Since(info.ModTime()) > UnlockedAge
	}
	defer f.Close()
	return lock(f) == nil
}
