package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	cases := []struct{ addr, want string }{
		{"127.0.0.1", "loopback"},
		{"127.10.0.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd12:3456::1", "unique-local"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.254", "shared (CGNAT)"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"64:ff9b::7f00:1", "loopback"}, // NAT64 of 127.0.0.1
		{"2002:a00:1::1", "private"},    // 6to4 of 10.0.0.1
		{"64:ff9b::808:808", ""},        // NAT64 of 8.8.8.8
		// IPv4-compatible (::a.b.c.d): judged by the IPv4 address.
		{"::127.0.0.1", "loopback"},
		{"::a9fe:a9fe", "cloud metadata"},
		{"::10.0.0.1", "private"},
		{"::8.8.8.8", ""},
		// IPv4-mapped.
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:a9fe:a9fe", "cloud metadata"},
		{"::ffff:8.8.8.8", ""},
		// SIIT IPv4-translated (::ffff:0:a.b.c.d).
		{"::ffff:0:127.0.0.1", "loopback"},
		{"::ffff:0:a9fe:a9fe", "cloud metadata"},
		{"::ffff:0:192.168.0.1", "private"},
		{"::ffff:0:8.8.8.8", ""},
		// Teredo: the client's IPv4 address is the last 32 bits inverted.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"}, // client 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"},  // client 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:5601:5601", "cloud metadata"},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""}, // client 8.8.8.8
		// 6to4: the IPv4 address follows 2002::/16.
		{"2002:7f00:1::1", "loopback"},
		{"2002:a9fe:a9fe::", "cloud metadata"},
		{"2002:c0a8:101::1", "private"},
		{"2002:808:808::1", ""},
		// NAT64, well-known prefix (64:ff9b::/96).
		{"64:ff9b::10.0.0.1", "private"},
		{"64:ff9b::169.254.169.254", "cloud metadata"},
		// NAT64, local-use prefix (64:ff9b:1::/48): a private IPv4 address
		// is named; any other is refused, the prefix being local.
		{"64:ff9b:1::127.0.0.1", "loopback"},
		{"64:ff9b:1::a9fe:a9fe", "cloud metadata"},
		{"64:ff9b:1::808:808", "local-use NAT64"},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
	}
	for _, c := range cases {
		if got := Blocked(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Blocked(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := &Guard{}
	ctx := context.Background()
	cases := []struct {
		url     string
		refused bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"http://[::1]/hook", true},
		{"http://localhost/hook", true},
		{"https://169.254.169.254/latest/meta-data", true},
		{"http://10.0.0.8/", true},
		{"https://8.8.8.8/hook", false},
	}
	for _, c := range cases {
		u, _ := url.Parse(c.url)
		err := g.CheckURL(ctx, u)
		if (err != nil) != c.refused {
			t.Errorf("CheckURL(%s) = %v, want refused=%v", c.url, err, c.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "WEBHOOK_ALLOW_PRIVATE") {
			t.Errorf("CheckURL(%s): %q does not say how to allow it", c.url, err)
		}
	}
	u, _ := url.Parse("http://127.0.0.1/")
	if err := (&Guard{AllowPrivate: true}).CheckURL(ctx, u); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}

// The client checks the address it dials, whatever the name resolved to
// when the URL was checked: a name that now points at loopback is refused.
func TestClientRefusesPrivateAtDialTime(t *testing.T) {
	t.Parallel()
	hit := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit <- struct{}{} }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	for _, target := range []string{srv.URL, "http://localhost:" + port} {
		_, err := (&Guard{}).Client(5*time.Second).Post(target, "application/json", nil)
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != "loopback" {
			t.Errorf("POST %s: error %v, want a loopback refusal", target, err)
		}
	}
	select {
	case <-hit:
		t.Fatal("the receiver was reached")
	default:
	}
	resp, err := (&Guard{AllowPrivate: true}).Client(5*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
	resp.Body.Close()
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			t.Error("the redirect was followed")
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	resp, err := (&Guard{AllowPrivate: true}).Client(5*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status %d, want 307", resp.StatusCode)
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		retried    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{0, 0, 5 * time.Second},
		{1, 0, 5 * time.Minute},
		{2, 0, 30 * time.Minute},
		{8, 0, 24 * time.Hour},
		{20, 0, 24 * time.Hour},
		{0, 30 * time.Second, 30 * time.Second}, // Retry-After asks for more
		{1, 30 * time.Second, 5 * time.Minute},  // never sooner than the schedule
		{0, 72 * time.Hour, 24 * time.Hour},     // capped
	}
	for _, c := range cases {
		if got := RetryDelay(c.retried, c.retryAfter); got != c.want {
			t.Errorf("RetryDelay(%d, %s) = %s, want %s", c.retried, c.retryAfter, got, c.want)
		}
	}
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120": 2 * time.Minute, "": 0, "soon": 0, "-5": 0,
		"Thu, 29 Jan 2026 10:00:30 GMT": 30 * time.Second,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}
