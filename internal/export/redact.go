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
		if r := RedactDatabaseURL(s); r != s {
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

// RedactDatabaseURL hides the password of a postgres:// URL: the one in
// the user info and a password= query parameter. It splits the URL by
// hand, as libpq does, so multi-host URLs (which net/url refuses) work too.
func RedactDatabaseURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "(unparsable URL)"
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if user, _, hasPass := strings.Cut(authority[:at], ":"); hasPass {
			authority = user + ":xxxxx" + authority[at:]
		}
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		pairs := strings.Split(query, "&")
		for i, kv := range pairs {
			k, _, _ := strings.Cut(kv, "=")
			if name, err := url.QueryUnescape(k); err == nil && name == "password" || k == "password" {
				pairs[i] = k + "=xxxxx"
			}
		}
		path += "?" + strings.Join(pairs, "&")
	}
	return scheme + "://" + authority + path
}
