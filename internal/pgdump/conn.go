package pgdump

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Conn is where a tool connects: the parts of a postgres:// URL, decoded.
type Conn struct {
	Host     string // name, IP address or unix-socket directory; several comma-separated
	Port     string // "" for libpq's default; several comma-separated, matching Host
	User     string
	Password string // goes only into the child's environment, as PGPASSWORD
	Database string
	// Params holds the other libpq connection keywords (sslmode, sslrootcert, options,
	// application_name, ...). The tools get them as PG* environment variables.
	Params map[string]string
	// Ignored names the URL's query parameters that are not libpq keywords: pgx runtime
	// parameters such as statement_timeout, and pgxpool settings. They are meant for the
	// service's own connections; a statement_timeout would kill a long dump.
	Ignored []string
}

// DefaultConnectTimeout bounds a tool's connection attempt when the URL sets no
// connect_timeout: libpq would otherwise wait on an unanswering host for minutes.
const DefaultConnectTimeout = 30 * time.Second

// libpqEnv maps the libpq connection keywords the tools accept to their environment variables
// ("" when libpq has none: those go into the --dbname connection string instead).
var libpqEnv = map[string]string{
	"hostaddr":                  "PGHOSTADDR",
	"passfile":                  "PGPASSFILE",
	"require_auth":              "PGREQUIREAUTH",
	"channel_binding":           "PGCHANNELBINDING",
	"service":                   "PGSERVICE",
	"options":                   "PGOPTIONS",
	"application_name":          "PGAPPNAME",
	"sslmode":                   "PGSSLMODE",
	"sslnegotiation":            "PGSSLNEGOTIATION",
	"requiressl":                "PGREQUIRESSL",
	"sslcompression":            "PGSSLCOMPRESSION",
	"sslcert":                   "PGSSLCERT",
	"sslkey":                    "PGSSLKEY",
	"sslcertmode":               "PGSSLCERTMODE",
	"sslrootcert":               "PGSSLROOTCERT",
	"sslcrl":                    "PGSSLCRL",
	"sslcrldir":                 "PGSSLCRLDIR",
	"sslsni":                    "PGSSLSNI",
	"requirepeer":               "PGREQUIREPEER",
	"ssl_min_protocol_version":  "PGSSLMINPROTOCOLVERSION",
	"ssl_max_protocol_version":  "PGSSLMAXPROTOCOLVERSION",
	"gssencmode":                "PGGSSENCMODE",
	"krbsrvname":                "PGKRBSRVNAME",
	"gsslib":                    "PGGSSLIB",
	"gssdelegation":             "PGGSSDELEGATION",
	"connect_timeout":           "PGCONNECT_TIMEOUT",
	"client_encoding":           "PGCLIENTENCODING",
	"target_session_attrs":      "PGTARGETSESSIONATTRS",
	"load_balance_hosts":        "PGLOADBALANCEHOSTS",
	"fallback_application_name": "",
	"keepalives":                "",
	"keepalives_idle":           "",
	"keepalives_interval":       "",
	"keepalives_count":          "",
	"tcp_user_timeout":          "",
}

// pgxKeys are the Params pgx understands too, used for the version query. Anything else would
// reach the server as a runtime parameter and be refused.
var pgxKeys = map[string]bool{
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslsni": true,
	"sslcertmode": true, "sslnegotiation": true, "application_name": true, "options": true,
	"connect_timeout": true, "target_session_attrs": true, "channel_binding": true,
	"require_auth": true, "krbsrvname": true, "passfile": true, "service": true,
}

// ParseDSN parses a postgres:// or postgresql:// URL as libpq does: user, password, host and
// database are percent-decoded; hosts may be IPv6 literals in brackets or a comma-separated
// list; a unix-socket directory comes as ?host=/path; libpq keywords in the query string are
// kept in Params. Errors never quote the URL (it may hold the password).
func ParseDSN(dsn string) (Conn, error) {
	rest, ok := cutScheme(dsn)
	if !ok {
		return Conn{}, errors.New("pgdump: parse database URL: it must start with postgres:// or postgresql://")
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return Conn{}, errors.New("pgdump: parse database URL: unexpected '#': percent-encode it (%23)")
	}
	authority, rest := rest, ""
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	path, query, _ := strings.Cut(rest, "?")

	var c Conn
	// The last '@' ends the user info, as in pgx (Go's url.Parse), so both read a URL alike.
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.User, err = url.PathUnescape(user); err != nil {
			return Conn{}, errors.New("pgdump: parse database URL: invalid percent-encoding in the user name")
		}
		if hasPass {
			if c.Password, err = url.PathUnescape(pass); err != nil {
				return Conn{}, errors.New("pgdump: parse database URL: invalid percent-encoding in the password")
			}
		}
	}
	hosts, ports, err := splitHosts(authority)
	if err != nil {
		return Conn{}, fmt.Errorf("pgdump: parse database URL: %w", err)
	}
	c.Host = strings.Join(hosts, ",")
	if strings.Trim(strings.Join(ports, ","), ",") != "" {
		c.Port = strings.Join(ports, ",")
	}
	if db := strings.TrimPrefix(path, "/"); db != "" {
		if c.Database, err = url.PathUnescape(db); err != nil {
			return Conn{}, errors.New("pgdump: parse database URL: invalid percent-encoding in the database name")
		}
	}
	if err := c.parseQuery(query); err != nil {
		return Conn{}, fmt.Errorf("pgdump: parse database URL: %w", err)
	}
	if err := c.validate(); err != nil {
		return Conn{}, fmt.Errorf("pgdump: parse database URL: %w", err)
	}
	return c, nil
}

func cutScheme(dsn string) (string, bool) {
	for _, s := range []string{"postgresql://", "postgres://"} {
		if len(dsn) >= len(s) && strings.EqualFold(dsn[:len(s)], s) {
			return dsn[len(s):], true
		}
	}
	return "", false
}

// splitHosts splits "h1:5432,[::1]:5433,h3" into hosts and ports (each "" when absent).
func splitHosts(s string) (hosts, ports []string, err error) {
	for first := true; first || s != ""; first = false {
		var h, p string
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, nil, errors.New("unterminated IPv6 address: missing ']'")
			}
			h, s = s[1:end], s[end+1:]
			var tail string
			tail, s, _ = strings.Cut(s, ",")
			if tail != "" {
				if !strings.HasPrefix(tail, ":") {
					return nil, nil, errors.New("unexpected characters after an IPv6 address")
				}
				p = tail[1:]
			}
		} else {
			var seg string
			seg, s, _ = strings.Cut(s, ",")
			h = seg
			if i := strings.LastIndexByte(seg, ':'); i >= 0 {
				h, p = seg[:i], seg[i+1:]
			}
		}
		if h, err = url.PathUnescape(h); err != nil {
			return nil, nil, errors.New("invalid percent-encoding in a host name")
		}
		if p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, nil, fmt.Errorf("invalid port %q", p)
			}
		}
		hosts, ports = append(hosts, h), append(ports, p)
	}
	return hosts, ports, nil
}

func (c *Conn) parseQuery(query string) error {
	if query == "" {
		return nil
	}
	for kv := range strings.SplitSeq(query, "&") {
		if kv == "" {
			continue
		}
		rk, rv, ok := strings.Cut(kv, "=")
		// '+' stays a plus, as in libpq: only %XX is decoded.
		k, err := url.PathUnescape(rk)
		if err != nil {
			return errors.New("invalid percent-encoding in a query parameter name")
		}
		if !ok {
			return fmt.Errorf("query parameter %q has no value", k)
		}
		v, err := url.PathUnescape(rv)
		if err != nil {
			return fmt.Errorf("invalid percent-encoding in the value of %q", k)
		}
		switch k {
		case "host":
			c.Host = v
		case "port":
			c.Port = v
		case "user":
			c.User = v
		case "password":
			c.Password = v
		case "dbname":
			c.Database = v
		case "ssl":
			// The JDBC-style alias libpq and pgx both accept.
			if v == "true" {
				c.setParam("sslmode", "require")
			}
		case "sslpassword":
			// libpq reads it only from the connection string, which would show it in the
			// process list.
			return errors.New("sslpassword is not supported for pg_dump/pg_restore (libpq would need it on the command line); use a key file without a passphrase, readable only by the worker")
		default:
			if _, known := libpqEnv[k]; known {
				c.setParam(k, v)
			} else {
				c.Ignored = append(c.Ignored, k)
			}
		}
	}
	return nil
}

func (c *Conn) setParam(k, v string) {
	if c.Params == nil {
		c.Params = make(map[string]string)
	}
	c.Params[k] = v
}

func (c Conn) validate() error {
	for _, p := range strings.Split(c.Port, ",") {
		if p == "" {
			continue
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", p)
		}
	}
	for k := range c.Params {
		if _, known := libpqEnv[k]; !known {
			return fmt.Errorf("unknown connection parameter %q", k)
		}
	}
	return nil
}

// args is the connection part of a tool's argument list. It never holds the password.
func (c Conn) args() []string {
	var a []string
	if c.Host != "" {
		a = append(a, "--host="+c.Host)
	}
	if c.Port != "" {
		a = append(a, "--port="+c.Port)
	}
	if c.User != "" {
		a = append(a, "--username="+c.User)
	}
	if d := c.dbnameArg(); d != "" {
		a = append(a, "--dbname="+d)
	}
	return a
}

// dbnameArg is the --dbname value: the bare name when that is unambiguous, else a connection
// string, which libpq expands. A name containing '=' or a URL prefix would otherwise be read as
// a connection string, and keywords without an environment variable can only go there.
func (c Conn) dbnameArg() string {
	var extra []string
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		if libpqEnv[k] == "" {
			extra = append(extra, k+"="+quoteConninfo(c.Params[k]))
		}
	}
	plain := c.Database != "" && !strings.Contains(c.Database, "=") &&
		!strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://")
	if len(extra) == 0 && (plain || c.Database == "") {
		return c.Database
	}
	if c.Database != "" {
		extra = append([]string{"dbname=" + quoteConninfo(c.Database)}, extra...)
	}
	return strings.Join(extra, " ")
}

// env is base (normally os.Environ()) with the connection's settings added. The worker's own
// PG* variables stay as defaults, as they do for libpq and pgx, unless the URL overrides them.
func (c Conn) env(base []string) []string {
	set := map[string]string{}
	if c.Password != "" {
		set["PGPASSWORD"] = c.Password
	}
	for k, v := range c.Params {
		if e := libpqEnv[k]; e != "" {
			set[e] = v
		}
	}
	if _, ok := set["PGCONNECT_TIMEOUT"]; !ok && !hasEnv(base, "PGCONNECT_TIMEOUT") {
		set["PGCONNECT_TIMEOUT"] = strconv.Itoa(int(DefaultConnectTimeout / time.Second))
	}
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; !ours {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		out = append(out, k+"="+set[k])
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key && v != "" {
			return true
		}
	}
	return false
}

// pgxConnString is a keyword/value connection string for pgx, for the version query.
func (c Conn) pgxConnString() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+quoteConninfo(v))
		}
	}
	add("host", c.Host)
	add("port", c.Port)
	add("user", c.User)
	add("password", c.Password)
	add("dbname", c.Database)
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		if pgxKeys[k] {
			add(k, c.Params[k])
		}
	}
	if _, ok := c.Params["connect_timeout"]; !ok {
		add("connect_timeout", strconv.Itoa(int(DefaultConnectTimeout/time.Second)))
	}
	return strings.Join(parts, " ")
}

// quoteConninfo quotes a connection-string value for libpq and pgx.
func quoteConninfo(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// String is the URL without its password, for messages.
func (c Conn) String() string {
	u := url.URL{Scheme: "postgres", Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	if !strings.HasPrefix(c.Host, "/") {
		u.Host = c.Host
		if strings.Contains(c.Host, ":") && !strings.Contains(c.Host, ",") {
			u.Host = "[" + c.Host + "]"
		}
		if c.Port != "" && !strings.Contains(c.Host, ",") {
			u.Host = hostPort(c.Host, c.Port)
		}
	}
	q := url.Values{}
	if strings.HasPrefix(c.Host, "/") {
		q.Set("host", c.Host)
		if c.Port != "" {
			q.Set("port", c.Port)
		}
	}
	for k, v := range c.Params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// GoString keeps %#v from printing the password.
func (c Conn) GoString() string { return "pgdump.Conn(" + c.String() + ")" }

// LogValue keeps slog from printing the password.
func (c Conn) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.String("port", c.Port),
		slog.String("user", c.User), slog.String("database", c.Database))
}

func hostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}
