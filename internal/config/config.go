// Package config reads hubexport's configuration from the environment,
// once, at start. Only cmd/hubexport imports it; everything else receives
// the values it needs.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/export"
)

// Config is hubexport's configuration.
type Config struct {
	DatabaseURL string
	RedisURL    string
	HubRedisURL string
	AdminToken  string
	HTTPAddr    string
	// MetricsAddr, if set, is where a process without the API role serves
	// GET /metrics (the API serves it on HTTPAddr).
	MetricsAddr string
	// PublicURL is PUBLIC_URL, or when unset derived from HTTPAddr
	// (":8080" is http://localhost:8080).
	PublicURL  string
	StorageURL string
	S3         S3
	Backup     Backup

	// URLSigningKey signs local download links; empty means a key kept in
	// the database, shared by every instance.
	URLSigningKey string

	LogLevel  slog.Level
	LogFormat string // json or text

	AutoMigrate       bool
	ArtifactRetention time.Duration
	// RestoreUploadMaxBytes is the largest dump a restore upload URL is
	// issued for.
	RestoreUploadMaxBytes int64
	DownloadLinkTTL       time.Duration
	MaxActiveJobs         int
	WorkerConcurrency     int
	ShutdownTimeout       time.Duration
	KeyCacheTTL           time.Duration
	JobLeaseTTL           time.Duration
	ReconcileInterval     time.Duration
	CleanupInterval       time.Duration
	RetryBaseDelay        time.Duration
	RetryMaxDelay         time.Duration
	TrustedProxies        []string

	// Limits on what one caller can hold open or try (issue of an attack
	// run): event streams per principal and in all, the stall after which a
	// local download is dropped, and failed authentications.
	EventStreamsPerPrincipal int
	EventStreamsMax          int
	DownloadWriteTimeout     time.Duration
	AuthFailureCacheTTL      time.Duration
	AuthFailuresPerMinute    int

	// WebhookAllowPrivate lets webhooks reach loopback, private and
	// link-local addresses (tests, closed networks).
	WebhookAllowPrivate bool

	// ScheduleSyncInterval is how often scheduler processes re-read the
	// backup schedules; ScheduleCheckInterval how often retention and
	// freshness are checked. ScheduleAllowEvery accepts "@every" specs.
	ScheduleSyncInterval  time.Duration
	ScheduleCheckInterval time.Duration
	ScheduleAllowEvery    bool
	// SchedulesPerUser caps the schedules each user (not administrators)
	// may have.
	SchedulesPerUser int
	// FeedLag is how far behind now an incremental feed export stops:
	// CCH writes a request's row when it starts and completes it later.
	FeedLag time.Duration

	publicURLDerived bool // PUBLIC_URL was unset
}

// publicURLFromAddr is the URL a client on this machine reaches the
// listen address addr (host:port) at: a wildcard or empty host is
// localhost.
func publicURLFromAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// PublicURLWarning describes a PUBLIC_URL that likely points where the API
// does not listen: its port is not HTTP_ADDR's, and it either names the
// port or is a loopback address (a proxy on the default port in front of
// the API is the usual, correct setup). "" when there is nothing to say.
func (c *Config) PublicURLWarning() string {
	if c.publicURLDerived {
		return ""
	}
	_, listen, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return ""
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	port := u.Port()
	explicit := port != ""
	if !explicit {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if port == listen || (!explicit && !loopback) {
		return ""
	}
	return fmt.Sprintf("PUBLIC_URL %s points at port %s but the API listens on HTTP_ADDR %s: local download links will not reach it unless a proxy forwards that port (unset PUBLIC_URL to derive it from HTTP_ADDR)",
		c.PublicURL, port, c.HTTPAddr)
}

// Backup configures database_backup and database_restore jobs.
type Backup struct {
	// Location is BACKUP_TIMEZONE: the zone of the time in backup file names.
	Location *time.Location
	// PgDumpPath and PgRestorePath override the tools' lookup.
	PgDumpPath    string
	PgRestorePath string
	// LockWait is how long a job waits for the backup lock; LockRenew how
	// often a held lock is renewed (and a lost one noticed).
	LockWait  time.Duration
	LockRenew time.Duration
	// Concurrency is how many backups and restores one worker process runs
	// at once, in slots of their own: a backup waiting for the lock never
	// holds a slot exports and webhook deliveries need.
	Concurrency int
	// AgeRecipients, when not empty, is the server's encryption policy:
	// every backup is encrypted to them (BACKUP_AGE_RECIPIENTS and
	// BACKUP_AGE_RECIPIENTS_FILE together).
	AgeRecipients []agefile.Recipient
	// AgeIdentities decrypt encrypted dumps for restores
	// (BACKUP_AGE_IDENTITY_FILE); nil when unset.
	AgeIdentities *agefile.Identities
	// VerifyDatabaseURL is where restore drills create their scratch
	// databases (a role with CREATEDB); "" is DATABASE_URL's server.
	VerifyDatabaseURL string
}

// S3 is the S3-compatible storage's settings.
type S3 struct {
	Endpoint        string
	PublicEndpoint  string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	ForcePathStyle  bool
}

// Lookup reads one environment variable (os.LookupEnv in production).
type Lookup func(name string) (string, bool)

// Load reads the configuration. Every problem is reported at once, each
// naming its variable.
func Load(lookup Lookup) (*Config, error) {
	r := reader{lookup: lookup}
	c := &Config{
		DatabaseURL: r.str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/claude_code_hub"),
		RedisURL:    r.str("REDIS_URL", "redis://127.0.0.1:6379/0"),
		AdminToken:  r.secret("ADMIN_TOKEN"),
		HTTPAddr:    r.str("HTTP_ADDR", ":8080"),
		MetricsAddr: r.str("METRICS_ADDR", ""),
		PublicURL:   strings.TrimRight(r.str("PUBLIC_URL", ""), "/"),
		StorageURL:  r.str("STORAGE_URL", "file://./data/exports"),
		S3: S3{
			Endpoint:        r.str("S3_ENDPOINT", ""),
			PublicEndpoint:  r.str("S3_PUBLIC_ENDPOINT", ""),
			Region:          r.str("S3_REGION", "us-east-1"),
			AccessKeyID:     r.secret("S3_ACCESS_KEY_ID"),
			SecretAccessKey: r.secret("S3_SECRET_ACCESS_KEY"),
			ForcePathStyle:  r.boolean("S3_FORCE_PATH_STYLE", false),
		},
		URLSigningKey:         r.secret("URL_SIGNING_KEY"),
		LogFormat:             r.str("LOG_FORMAT", "json"),
		AutoMigrate:           r.boolean("AUTO_MIGRATE", true),
		ArtifactRetention:     r.duration("ARTIFACT_RETENTION", 7*24*time.Hour),
		RestoreUploadMaxBytes: r.bytes("RESTORE_UPLOAD_MAX_BYTES", 5<<30),
		DownloadLinkTTL:       r.duration("DOWNLOAD_LINK_TTL", 15*time.Minute),
		MaxActiveJobs:         r.integer("MAX_ACTIVE_JOBS_PER_PRINCIPAL", 3, 1, 1000),
		WorkerConcurrency:     r.integer("WORKER_CONCURRENCY", max(2, runtime.NumCPU()), 1, 256),
		ShutdownTimeout:       r.duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		KeyCacheTTL:           r.duration("KEY_CACHE_TTL", 30*time.Second),
		JobLeaseTTL:           r.duration("JOB_LEASE_TTL", 30*time.Second),
		ReconcileInterval:     r.duration("RECONCILE_INTERVAL", 30*time.Second),
		CleanupInterval:       r.duration("CLEANUP_INTERVAL", 5*time.Minute),
		RetryBaseDelay:        r.duration("RETRY_BASE_DELAY", 10*time.Second),
		RetryMaxDelay:         r.duration("RETRY_MAX_DELAY", 10*time.Minute),
		TrustedProxies:        r.list("TRUSTED_PROXIES"),

		EventStreamsPerPrincipal: r.integer("EVENT_STREAMS_PER_PRINCIPAL", 10, 0, 100_000),
		EventStreamsMax:          r.integer("EVENT_STREAMS_MAX", 1000, 0, 1_000_000),
		DownloadWriteTimeout:     r.duration("DOWNLOAD_WRITE_TIMEOUT", time.Minute),
		AuthFailureCacheTTL:      r.duration("AUTH_FAILURE_CACHE_TTL", 10*time.Second),
		AuthFailuresPerMinute:    r.integer("AUTH_FAILURES_PER_MINUTE", 30, 0, 1_000_000),

		WebhookAllowPrivate: r.boolean("WEBHOOK_ALLOW_PRIVATE", false),

		ScheduleSyncInterval:  r.duration("SCHEDULE_SYNC_INTERVAL", 30*time.Second),
		ScheduleCheckInterval: r.duration("SCHEDULE_CHECK_INTERVAL", time.Minute),
		ScheduleAllowEvery:    r.boolean("SCHEDULE_ALLOW_EVERY", false),
		SchedulesPerUser:      r.integer("SCHEDULES_PER_USER", 10, 0, 10000),
		FeedLag:               r.duration("FEED_LAG", 5*time.Minute),
	}
	c.HubRedisURL = r.str("HUB_REDIS_URL", c.RedisURL)
	c.LogLevel = r.level("LOG_LEVEL", slog.LevelInfo)
	c.Backup = Backup{
		Location:      time.UTC,
		PgDumpPath:    r.str("PG_DUMP_PATH", ""),
		PgRestorePath: r.str("PG_RESTORE_PATH", ""),
		LockWait:      r.duration("BACKUP_LOCK_WAIT", 15*time.Minute),
		LockRenew:     r.duration("BACKUP_LOCK_RENEW_INTERVAL", time.Minute),
		Concurrency:   r.integer("BACKUP_CONCURRENCY", 1, 1, 64),

		VerifyDatabaseURL: r.secret("VERIFY_DATABASE_URL"),
	}
	if tz := r.str("BACKUP_TIMEZONE", ""); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			r.fail("BACKUP_TIMEZONE", "must be an IANA time zone such as UTC or Asia/Shanghai, not %q", tz)
		} else {
			c.Backup.Location = loc
		}
	}
	c.Backup.AgeRecipients = r.ageRecipients()
	c.Backup.AgeIdentities = r.ageIdentities()
	if c.Backup.LockRenew >= 5*time.Minute {
		r.fail("BACKUP_LOCK_RENEW_INTERVAL", "must be shorter than the backup lock's 5-minute TTL")
	}

	for _, v := range []struct{ name, val string }{{"DATABASE_URL", c.DatabaseURL}, {"VERIFY_DATABASE_URL", c.Backup.VerifyDatabaseURL}} {
		if v.val == "" && v.name != "DATABASE_URL" {
			continue
		}
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.fail(v.name, "must be a postgres:// URL, such as postgres://user:password@host:5432/claude_code_hub")
		}
	}
	for _, v := range []struct{ name, val string }{{"REDIS_URL", c.RedisURL}, {"HUB_REDIS_URL", c.HubRedisURL}} {
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			r.fail(v.name, "must be a redis:// or rediss:// URL, such as redis://127.0.0.1:6379/0")
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		r.fail("HTTP_ADDR", "must be host:port or :port, such as :8080 or 127.0.0.1:8080, not %q", c.HTTPAddr)
	} else if c.PublicURL == "" {
		c.PublicURL = publicURLFromAddr(c.HTTPAddr)
		c.publicURLDerived = true
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail("PUBLIC_URL", "must be the http(s) URL clients reach the API at, such as https://exports.example.com")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		r.fail("LOG_FORMAT", "must be json or text")
	}
	if c.AdminToken == "change-me" {
		// CCH ignores this placeholder too.
		c.AdminToken = ""
	}
	if c.URLSigningKey != "" && len(c.URLSigningKey) < 32 {
		r.fail("URL_SIGNING_KEY", "must be at least 32 characters; generate one with: openssl rand -hex 32")
	}
	if c.DownloadLinkTTL < time.Second || c.DownloadLinkTTL > 7*24*time.Hour {
		r.fail("DOWNLOAD_LINK_TTL", "must be between 1s and 7d (S3 presigned links cannot live longer)")
	}
	if c.JobLeaseTTL < 3*time.Second {
		r.fail("JOB_LEASE_TTL", "must be at least 3s")
	}
	if c.ScheduleSyncInterval < time.Second || c.ScheduleSyncInterval > time.Minute {
		r.fail("SCHEDULE_SYNC_INTERVAL", "must be from 1s to 1m, so a schedule change takes effect within a minute")
	}
	if c.ScheduleCheckInterval < time.Second {
		r.fail("SCHEDULE_CHECK_INTERVAL", "must be at least 1s")
	}
	if len(r.errs) > 0 {
		return nil, fmt.Errorf("config: %w", errors.Join(r.errs...))
	}
	return c, nil
}

// LogAttrs describes the configuration for the startup log, with every
// secret and password redacted.
func (c *Config) LogAttrs() []any {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return []any{
		"database_url", export.RedactURL(c.DatabaseURL),
		"verify_database_url", export.RedactURL(c.Backup.VerifyDatabaseURL),
		"redis_url", export.RedactURL(c.RedisURL),
		"hub_redis_url", export.RedactURL(c.HubRedisURL),
		"admin_token", set(c.AdminToken),
		"http_addr", c.HTTPAddr,
		"metrics_addr", c.MetricsAddr,
		"public_url", c.PublicURL,
		"storage_url", c.StorageURL,
		"s3_endpoint", c.S3.Endpoint,
		"s3_public_endpoint", c.S3.PublicEndpoint,
		"s3_region", c.S3.Region,
		"s3_access_key_id", set(c.S3.AccessKeyID),
		"s3_secret_access_key", set(c.S3.SecretAccessKey),
		"url_signing_key", set(c.URLSigningKey),
		"artifact_retention", c.ArtifactRetention.String(),
		"restore_upload_max_bytes", c.RestoreUploadMaxBytes,
		"download_link_ttl", c.DownloadLinkTTL.String(),
		"max_active_jobs_per_principal", c.MaxActiveJobs,
		"worker_concurrency", c.WorkerConcurrency,
		"event_streams_per_principal", c.EventStreamsPerPrincipal,
		"event_streams_max", c.EventStreamsMax,
		"download_write_timeout", c.DownloadWriteTimeout.String(),
		"auth_failure_cache_ttl", c.AuthFailureCacheTTL.String(),
		"auth_failures_per_minute", c.AuthFailuresPerMinute,
		"backup_concurrency", c.Backup.Concurrency,
		"schedule_sync_interval", c.ScheduleSyncInterval.String(),
		"schedule_allow_every", c.ScheduleAllowEvery,
		"schedules_per_user", c.SchedulesPerUser,
		"feed_lag", c.FeedLag.String(),
		"auto_migrate", c.AutoMigrate,
		"webhook_allow_private", c.WebhookAllowPrivate,
		"backup_timezone", c.Backup.Location.String(),
		"pg_dump_path", c.Backup.PgDumpPath,
		"pg_restore_path", c.Backup.PgRestorePath,
		"backup_age_recipients", agefile.Fingerprints(c.Backup.AgeRecipients),
		"backup_age_identity", set(identityKinds(c.Backup.AgeIdentities)),
	}
}

func identityKinds(ids *agefile.Identities) string {
	if ids == nil {
		return ""
	}
	return strings.Join(ids.Kinds, ",")
}

// RandomKey returns a fresh random signing key.
func RandomKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type reader struct {
	lookup Lookup
	errs   []error
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// secret reads NAME, or the file NAME_FILE names (Docker and Kubernetes
// secrets); setting both is a mistake worth stopping for.
func (r *reader) secret(name string) string {
	v, hasV := r.lookup(name)
	f, hasF := r.lookup(name + "_FILE")
	if hasV && v != "" && hasF && f != "" {
		r.fail(name, "and %s_FILE are both set; set only one", name)
		return ""
	}
	if hasF && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			r.fail(name+"_FILE", "names a file that cannot be read: %v", err)
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	return v
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false, not %q", v)
		return def
	}
	return b
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, "must be an integer from %d to %d, not %q", lo, hi, v)
		return def
	}
	return n
}

// duration accepts Go durations ("90s", "1h30m") and whole days ("7d").
func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(name, "must be a positive duration such as 30s, 15m, 2h or 7d, not %q", v)
		return def
	}
	return d
}

// byteUnits are the suffixes bytes accepts, binary multiples.
var byteUnits = []struct {
	suffix string
	n      int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}

// bytes accepts a positive number of bytes, plain (5368709120) or with a
// binary unit (512MiB, 5GiB, 1TiB).
func (r *reader) bytes(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	num, mult := v, int64(1)
	for _, u := range byteUnits {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		r.fail(name, "must be a positive number of bytes, plain or with KiB, MiB, GiB or TiB (such as 5GiB), not %q", v)
		return def
	}
	return n * mult
}

func (r *reader) list(name string) []string {
	v := r.str(name, "")
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *reader) level(name string, def slog.Level) slog.Level {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, "must be debug, info, warn or error, not %q", v)
		return def
	}
	return l
}

// ageRecipients reads BACKUP_AGE_RECIPIENTS (comma-separated) and the file
// BACKUP_AGE_RECIPIENTS_FILE names (one per line, '#' comments, as age -R
// reads), together.
func (r *reader) ageRecipients() []agefile.Recipient {
	var out []agefile.Recipient
	if v := r.str("BACKUP_AGE_RECIPIENTS", ""); v != "" {
		for i, item := range strings.Split(v, ",") {
			if strings.TrimSpace(item) == "" {
				continue
			}
			rc, err := agefile.ParseRecipient(item)
			if err != nil {
				r.fail("BACKUP_AGE_RECIPIENTS", "item %d %v", i+1, err)
				continue
			}
			out = append(out, rc)
		}
	}
	if path := r.str("BACKUP_AGE_RECIPIENTS_FILE", ""); path != "" {
		f, err := os.Open(path)
		if err != nil {
			r.fail("BACKUP_AGE_RECIPIENTS_FILE", "names a file that cannot be read: %v", err)
			return out
		}
		defer f.Close()
		rs, err := agefile.ParseRecipientsFile(f)
		if err != nil {
			r.fail("BACKUP_AGE_RECIPIENTS_FILE", "(%s): %v", path, err)
			return out
		}
		if len(rs) == 0 {
			r.fail("BACKUP_AGE_RECIPIENTS_FILE", "(%s) holds no recipient; add age1… or ssh-ed25519/ssh-rsa public keys, one per line, or unset it", path)
		}
		out = append(out, rs...)
	}
	return agefile.Dedupe(out)
}

// ageIdentities reads the file BACKUP_AGE_IDENTITY_FILE names: age
// identities or an SSH private key. Errors never quote the file.
func (r *reader) ageIdentities() *agefile.Identities {
	path := r.str("BACKUP_AGE_IDENTITY_FILE", "")
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		r.fail("BACKUP_AGE_IDENTITY_FILE", "names a file that cannot be read: %v", err)
		return nil
	}
	ids, err := agefile.ParseIdentities(b)
	if err != nil {
		r.fail("BACKUP_AGE_IDENTITY_FILE", "(%s) %v", path, err)
		return nil
	}
	return ids
}
