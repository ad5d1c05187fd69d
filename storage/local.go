package storage

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// MinSigningKeyLen is the shortest HMAC key accepted for local download links.
const MinSigningKeyLen = 32

// Local keeps artifacts in a directory. Unfinished writes are temp files named
// ".<final name>.tmp-<16 hex digits>" beside their final name.
type Local struct {
	root      string // absolute, cleaned
	publicURL string // without trailing slash
	key       []byte
}

var (
	_ export.ObjectStore = (*Local)(nil)
	_ FileServer         = (*Local)(nil)
)

func openLocal(raw string, c Config) (*Local, error) {
	dir, err := localRoot(raw)
	if err != nil {
		return nil, err
	}
	if len(c.SigningKey) < MinSigningKeyLen {
		return nil, fmt.Errorf("storage: the local backend needs a signing key of at least %d bytes for download links", MinSigningKeyLen)
	}
	pub, err := url.Parse(c.PublicURL)
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Host == "" || pub.RawQuery != "" || pub.User != nil {
		return nil, fmt.Errorf("storage: PUBLIC_URL %s: want http(s)://host[:port][/path], the base of local download links", redactURL(c.PublicURL))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: STORAGE_URL directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("storage: create STORAGE_URL directory: %w", err)
	}
	return &Local{
		root:      abs,
		publicURL: strings.TrimRight(pub.String(), "/"),
		key:       append([]byte(nil), c.SigningKey...),
	}, nil
}

// String names the store: its directory as a file URL.
func (l *Local) String() string { return "file://" + l.root }

// Root is the directory holding the artifacts.
func (l *Local) Root() string { return l.root }

func (l *Local) path(key string) string { return filepath.Join(l.root, filepath.FromSlash(key)) }

// Ping checks that the root directory is still there.
func (l *Local) Ping(ctx context.Context) error {
	fi, err := os.Stat(l.root)
	if err != nil {
		return fmt.Errorf("storage: ping: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("storage: ping: %s is not a directory", l.root)
	}
	return nil
}

const tmpMarker = ".tmp-"

func tempName(base string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "." + base + tmpMarker + hex.EncodeToString(b[:])
}

// finalName returns the name a temp file will be renamed to, and whether name is a temp file.
func finalName(name string) (string, bool) {
	if !strings.HasPrefix(name, ".") {
		return "", false
	}
	i := strings.LastIndex(name, tmpMarker)
	if i <= 1 {
		return "", false
	}
	suffix := name[i+len(tmpMarker):]
	if len(suffix) != 16 {
		return "", false
	}
	if _, err := hex.DecodeString(suffix); err != nil {
		return "", false
	}
	return name[1:i], true
}

// Create opens a temp file beside key's final name. The content type is not stored: the file
// handler derives it from the download filename.
func (l *Local) Create(ctx context.Context, key, contentType string) (export.Upload, error) {
	return l.create(ctx, key, false)
}

// errExists is returned by the Commit of an upload created with noReplace
// when an object is already at its key.
var errExists = errors.New("storage: an object is already at the key")

// create opens a temp file beside key's final name. With noReplace, Commit
// publishes it only if nothing is at the key yet (a hard link, which fails
// when the name exists, where a rename would replace it).
func (l *Local) create(ctx context.Context, key string, noReplace bool) (*localUpload, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage: create %q: %w", key, err)
	}
	final := l.path(key)
	dir := filepath.Dir(final)
	syncDirs := l.missingDirs(dir)
	var f *os.File
	var err error
	// A concurrent Delete may prune the directory between MkdirAll and OpenFile.
	for range 3 {
		if err = os.MkdirAll(dir, 0o750); err != nil {
			break
		}
		f, err = os.OpenFile(filepath.Join(dir, tempName(filepath.Base(final))), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if !isNotExist(err) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("storage: create %q: %w", key, err)
	}
	return &localUpload{ctx: ctx, key: key, f: f, w: bufio.NewWriterSize(f, 256<<10), final: final, syncDirs: syncDirs, noReplace: noReplace}, nil
}

// missingDirs lists dir and those of its ancestors below root that do not exist yet, deepest
// first, plus the parent of the shallowest: the directories to fsync so that the new entries
// survive a crash.
func (l *Local) missingDirs(dir string) []string {
	dirs := []string{dir}
	for d := dir; d != l.root && strings.HasPrefix(d, l.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		dirs = append(dirs, filepath.Dir(d))
	}
	return dirs
}

type localUpload struct {
	ctx      context.Context
	key      string
	f        *os.File
	w        *bufio.Writer
	final    string
	syncDirs []string
	// noReplace: Commit fails with errExists rather than replace an object.
	noReplace bool
	state     string // "" while open, then "committed", "aborted" or "failed"
	err       error
}

func (u *localUpload) Write(p []byte) (int, error) {
	if u.state != "" {
		if u.err != nil {
			return 0, u.err
		}
		return 0, closedError(u.state)
	}
	if err := u.ctx.Err(); err != nil {
		return 0, u.fail(fmt.Errorf("storage: write %q: %w", u.key, err))
	}
	n, err := u.w.Write(p)
	if err != nil {
		return n, u.fail(fmt.Errorf("storage: write %q: %w", u.key, err))
	}
	return n, nil
}

// fail discards the temp file and remembers err for later calls.
func (u *localUpload) fail(err error) error {
	_ = u.f.Close()
	_ = os.Remove(u.f.Name())
	u.state, u.err = "failed", err
	return err
}

func (u *localUpload) Commit(ctx context.Context) error {
	if u.state != "" {
		if u.err != nil {
			return u.err
		}
		return closedError(u.state)
	}
	if err := ctx.Err(); err != nil {
		return u.fail(fmt.Errorf("storage: commit %q: %w", u.key, err))
	}
	if err := u.w.Flush(); err != nil {
		return u.fail(fmt.Errorf("storage: commit %q: write: %w", u.key, err))
	}
	if err := u.f.Sync(); err != nil {
		return u.fail(fmt.Errorf("storage: commit %q: fsync: %w", u.key, err))
	}
	if err := u.f.Close(); err != nil {
		return u.fail(fmt.Errorf("storage: commit %q: close: %w", u.key, err))
	}
	if u.noReplace {
		if err := os.Link(u.f.Name(), u.final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				err = errExists
			}
			return u.fail(fmt.Errorf("storage: commit %q: link: %w", u.key, err))
		}
		_ = os.Remove(u.f.Name())
	} else if err := os.Rename(u.f.Name(), u.final); err != nil {
		return u.fail(fmt.Errorf("storage: commit %q: rename: %w", u.key, err))
	}
	u.state = "committed"
	for _, d := range u.syncDirs {
		if err := syncDir(d); err != nil {
			// The file is in place; only its durability across a power loss is in doubt.
			return fmt.Errorf("storage: commit %q: fsync directory: %w", u.key, err)
		}
	}
	return nil
}

// Abort removes the temp file. After a successful Commit it does nothing, so it may be deferred.
func (u *localUpload) Abort(ctx context.Context) error {
	switch u.state {
	case "committed", "aborted":
		return nil
	case "failed":
		// fail already removed the temp file; try again in case that failed.
		if err := os.Remove(u.f.Name()); err != nil && !isNotExist(err) {
			return fmt.Errorf("storage: abort %q: %w", u.key, err)
		}
		return nil
	}
	u.state = "aborted"
	_ = u.f.Close()
	if err := os.Remove(u.f.Name()); err != nil && !isNotExist(err) {
		return fmt.Errorf("storage: abort %q: %w", u.key, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens a committed object.
func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	f, err := l.openFile(key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (l *Local) openFile(key string) (*os.File, error) {
	f, err := os.Open(l.path(key))
	if isNotExist(err) || errors.Is(err, fs.ErrInvalid) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: open %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notFound(key)
	}
	return f, nil
}

// Delete removes a committed object and the directories it leaves empty.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	p := l.path(key)
	if err := os.Remove(p); err != nil && !isNotExist(err) {
		return fmt.Errorf("storage: delete %q: %w", key, err)
	}
	l.pruneEmpty(filepath.Dir(p))
	return nil
}

// pruneEmpty removes dir and its ancestors below root while they are empty.
func (l *Local) pruneEmpty(dir string) {
	for d := dir; d != l.root && strings.HasPrefix(d, l.root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

// Exists reports whether a committed object is at key.
func (l *Local) Exists(ctx context.Context, key string) (bool, error) {
	if err := validKey(key); err != nil {
		return false, err
	}
	fi, err := os.Stat(l.path(key))
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: exists %q: %w", key, err)
	}
	return fi.Mode().IsRegular(), nil
}

// AbortPending removes the temp files of keys starting with prefix.
func (l *Local) AbortPending(ctx context.Context, prefix string) (int, error) {
	if err := validPrefix(prefix); err != nil {
		return 0, err
	}
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = l.path(prefix[:i])
	}
	n, err := l.removeTemps(ctx, start, func(key string, _ fs.FileInfo) bool {
		return strings.HasPrefix(key, prefix)
	})
	if err != nil {
		return n, fmt.Errorf("storage: abort pending %q: %w", prefix, err)
	}
	return n, nil
}

// Sweep removes temp files last written before olderThan. A write in progress keeps touching
// its file, so only abandoned ones qualify.
func (l *Local) Sweep(ctx context.Context, olderThan time.Time) (int, error) {
	n, err := l.removeTemps(ctx, l.root, func(_ string, fi fs.FileInfo) bool {
		return fi.ModTime().Before(olderThan)
	})
	if err != nil {
		return n, fmt.Errorf("storage: sweep: %w", err)
	}
	return n, nil
}

// ListOlder lists the committed objects whose key starts with prefix and whose file was last
// modified before olderThan; temp files are skipped.
func (l *Local) ListOlder(ctx context.Context, prefix string, olderThan time.Time) ([]string, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = l.path(prefix[:i])
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed under us, or the prefix's directory does not exist
			}
			return err
		}
		if d.IsDir() {
			return ctx.Err()
		}
		if _, tmp := finalName(d.Name()); tmp || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.ModTime().Before(olderThan) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return keys, fmt.Errorf("storage: list older %q: %w", prefix, err)
	}
	return keys, nil
}

// removeTemps removes the temp files below start for which match (given the key the temp file
// would become) is true.
func (l *Local) removeTemps(ctx context.Context, start string, match func(key string, fi fs.FileInfo) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed under us, or the prefix's directory does not exist
			}
			return err
		}
		if d.IsDir() {
			return ctx.Err()
		}
		final, ok := finalName(d.Name())
		if !ok || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(l.root, filepath.Join(filepath.Dir(p), final))
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !match(filepath.ToSlash(rel), fi) {
			return nil
		}
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			return err
		}
		n++
		l.pruneEmpty(filepath.Dir(p))
		return nil
	})
	return n, err
}
