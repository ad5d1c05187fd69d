package config

import (
	"strings"
	"testing"
)

// TestPublicURLFromHTTPAddr: an unset PUBLIC_URL follows HTTP_ADDR, so
// download links point at the port the API listens on.
func TestPublicURLFromHTTPAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"", "http://localhost:8080"},
		{":8080", "http://localhost:8080"},
		{":9000", "http://localhost:9000"},
		{"127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"0.0.0.0:9000", "http://localhost:9000"},
		{"[::]:9000", "http://localhost:9000"},
		{"[::1]:9000", "http://[::1]:9000"},
		{"exports.internal:8081", "http://exports.internal:8081"},
	} {
		m := map[string]string{}
		if tc.addr != "" {
			m["HTTP_ADDR"] = tc.addr
		}
		c, err := Load(env(m))
		if err != nil {
			t.Fatalf("HTTP_ADDR %q: %v", tc.addr, err)
		}
		if c.PublicURL != tc.want {
			t.Errorf("HTTP_ADDR %q: PUBLIC_URL %q, want %q", tc.addr, c.PublicURL, tc.want)
		}
		if w := c.PublicURLWarning(); w != "" {
			t.Errorf("HTTP_ADDR %q: derived PUBLIC_URL warns %q", tc.addr, w)
		}
	}
}

func TestPublicURLSetIsKept(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"HTTP_ADDR": ":9000", "PUBLIC_URL": "https://exports.example.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://exports.example.com" {
		t.Fatalf("PUBLIC_URL %q", c.PublicURL)
	}
}

func TestBadHTTPAddr(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"HTTP_ADDR": "8080"}))
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") || !strings.Contains(err.Error(), ":8080") {
		t.Fatalf("HTTP_ADDR 8080: %v", err)
	}
}

// TestPublicURLPortMismatchWarns: a PUBLIC_URL whose port is not the
// listener's is worth a warning; one behind a proxy on the default port is
// not.
func TestPublicURLPortMismatchWarns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, public string
		warn         bool
	}{
		{":9000", "http://localhost:8080", true},
		{"127.0.0.1:9000", "http://127.0.0.1:8080/", true},
		{":9000", "http://localhost", true},
		{":9000", "http://localhost:9000", false},
		{":8080", "https://exports.example.com", false},
		{":8080", "https://exports.example.com:8443", true},
		{":8443", "https://exports.example.com:8443/hx", false},
	} {
		c, err := Load(env(map[string]string{"HTTP_ADDR": tc.addr, "PUBLIC_URL": tc.public}))
		if err != nil {
			t.Fatal(err)
		}
		w := c.PublicURLWarning()
		if (w != "") != tc.warn {
			t.Errorf("HTTP_ADDR %q PUBLIC_URL %q: warning %q, want one: %v", tc.addr, tc.public, w, tc.warn)
		}
		if w != "" && (!strings.Contains(w, "PUBLIC_URL") || !strings.Contains(w, "HTTP_ADDR")) {
			t.Errorf("warning %q names neither variable", w)
		}
	}
}
