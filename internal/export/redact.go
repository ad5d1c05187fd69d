package export

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// MarshalJSON writes the API's job object. Params holding a database URL
// (database_restore's target_database_url) are shown without its password,
// whichever path the job takes out (get, list, events, a replayed create,
// a cancel): the worker reads the stored params, never this form.
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job // without this method
	c := plain(j)
	c.Params = RedactParams(j.Params)
	return json.Marshal(c)
}

// RedactParams returns params with the password of every "*database_url"
// field replaced by xxxxx.
func RedactParams(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte("database_url")) {
		return params
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil {
		return params
	}
	changed := false
	for k, v := range m {
		var s string
		if !strings.HasSuffix(k, "database_url") || json.Unmarshal(v, &s) != nil {
			continue
		}
		if r := RedactURL(s); r != s {
			m[k], _ = json.Marshal(r)
			changed = true
		}
	}
	if !changed {
		return params
	}
	out, err := json.Marshal(m)
	if err != nil {
		return params
	}
	return out
}

// RedactURL shows a URL (a database's, Redis's, storage's) without its
// passwords: the one in the user info and any query parameter whose name
// holds "password" (libpq's password and sslpassword). It splits the URL
// by hand, as libpq does, so multi-host URLs (which net/url refuses) work
// too. Where the URL is malformed it hides too much rather than too little:
// anything that is not scheme://... reads "(unparsable URL)".
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "(unparsable URL)"
	}
	// The user info ends at the last @ before the query; failing that, at
	// the last @ of all, in case a password holds a raw ?.
	q := strings.IndexByte(rest, '?')
	if q < 0 {
		q = len(rest)
	}
	at := strings.LastIndexByte(rest[:q], '@')
	if at < 0 {
		at = strings.LastIndexByte(rest, '@')
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if at >= 0 {
		userinfo := rest[:at]
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			userinfo = user + ":xxxxx"
		}
		b.WriteString(userinfo + "@")
		rest = rest[at+1:]
	}
	hostPath, query, hasQuery := strings.Cut(rest, "?")
	b.WriteString(hostPath)
	if hasQuery {
		pairs := strings.Split(query, "&")
		for i, kv := range pairs {
			k, _, _ := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if strings.Contains(strings.ToLower(name), "password") {
				pairs[i] = k + "=xxxxx"
			}
		}
		b.WriteString("?" + strings.Join(pairs, "&"))
	}
	return b.String()
}
