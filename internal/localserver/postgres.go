package localserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster: trust authentication for the `postgres` role,
// loopback only, durability off.
type Postgres struct {
	// URL is the maintenance database's DSN, postgres://postgres@127.0.0.1:port/postgres.
	URL     url.URL
	Version int // server_version_num
	Bin     string
	proc    *Process
}

// DSN returns the DSN of database db on this server.
func (s *Postgres) DSN(db string) string {
	u := s.URL
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

// Process is the postmaster.
func (s *Postgres) Process() *Process { return s.proc }

// Stop shuts the server down at once (SIGQUIT: no checkpoint, shared memory released).
func (s *Postgres) Stop() { s.proc.Stop(syscall.SIGQUIT, 5*time.Second) }

// StartPostgres creates a cluster in dir (which it creates; its parent must exist and, when
// running as root, be traversable by the postgres user) and starts it on a free port. Its log
// is dir/postgres.log.
func StartPostgres(dir string) (*Postgres, error) {
	initdb, postgres, err := PostgresBinaries()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "s") // short: unix socket paths are limited to 107 bytes
	data := filepath.Join(dir, "data")
	for _, d := range []string{dir, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("localserver: postgres dir: %w", err)
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Postgres refuses to run as root.
		if cred, err = postgresUser(); err != nil {
			return nil, err
		}
		for _, d := range []string{dir, sock} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("localserver: postgres dir: %w", err)
			}
		}
	}
	env := serverEnv()
	logPath := filepath.Join(dir, "postgres.log")

	if err := runInitdb(initdb, logPath, dir, data, cred, env); err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		proc, err := Start("postgres", logPath, dir, cred, env, postgres,
			"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", sock,
			// Durability is pointless for throwaway data and costs seconds per test run.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200")
		if err != nil {
			return nil, err
		}
		s := &Postgres{
			URL: url.URL{
				Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(port),
				Path: "/postgres", RawQuery: "sslmode=disable",
			},
			Bin:  filepath.Dir(postgres),
			proc: proc,
		}
		err = proc.WaitReady(60*time.Second, s.probe)
		if err == nil {
			return s, nil
		}
		proc.Stop(syscall.SIGKILL, 0)
		if attempt == 3 || !errors.Is(err, ErrExited) || !proc.PortTaken() {
			return nil, err
		}
	}
}

// probe checks that the server accepts queries and records its version.
func (s *Postgres) probe(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.URL.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&s.Version)
}

func runInitdb(initdb, logPath, dir, data string, cred *syscall.Credential, env []string) error {
	var err error
	// C.UTF-8 matches Debian's packaged clusters; plain C exists everywhere.
	for _, locale := range []string{"C.UTF-8", "C"} {
		var proc *Process
		proc, err = Start("initdb", logPath, dir, cred, env, initdb,
			"-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale="+locale, "--no-sync")
		if err != nil {
			return err
		}
		select {
		case <-proc.done:
		case <-time.After(2 * time.Minute):
			proc.Stop(syscall.SIGKILL, 0)
		}
		if proc.Success() {
			return nil
		}
		err = fmt.Errorf("localserver: initdb failed (%v)\n--- %s ---\n%s", proc.State(), logPath, proc.LogTail())
		_ = os.RemoveAll(data)
	}
	return err
}

// PostgresBinaries finds initdb and postgres: the newest /usr/lib/postgresql/<major>/bin
// first (Debian installs the server binaries there, off PATH), then PATH. Its error wraps
// ErrNotInstalled.
func PostgresBinaries() (initdb, postgres string, err error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if IsExecutable(i) && IsExecutable(p) {
			return i, p, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return initdb, postgres, nil
	}
	return "", "", fmt.Errorf("localserver: PostgreSQL server binaries (initdb, postgres) %w: "+
		"not found in /usr/lib/postgresql/*/bin or PATH (Debian: apt-get install postgresql)", ErrNotInstalled)
}

// CheckPostgresUser reports, when running as root, a missing `postgres` OS user (wrapping
// ErrNotInstalled); it is nil otherwise.
func CheckPostgresUser() error {
	if os.Geteuid() != 0 {
		return nil
	}
	_, err := postgresUser()
	return err
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localserver: running as root, so PostgreSQL must run as the 'postgres' OS user, "+
			"which is %w (%v): install the postgresql package, which creates it", ErrNotInstalled, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	// Empty Groups drops root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// serverEnv is the environment minus PG* variables, which would point initdb and postgres
// at another cluster.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}
