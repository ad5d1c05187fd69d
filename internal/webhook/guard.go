package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Guard keeps webhook requests out of private networks (server-side
// request forgery): loopback, private, link-local, unique-local, shared
// (CGNAT) and cloud-metadata addresses, and IPv6 addresses embedding one,
// are refused unless AllowPrivate.
type Guard struct {
	AllowPrivate bool
	// Resolver resolves hosts for CheckURL; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// RefusedError is a connection the guard refused.
type RefusedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused: %s is a %s address; deliveries to private networks are refused unless WEBHOOK_ALLOW_PRIVATE=true", e.Addr, e.Reason)
}

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blocked lists the refused ranges; the more specific come first so the
// reason names them.
var blocked = func() []blockedRange {
	var out []blockedRange
	for _, r := range [][2]string{
		{"169.254.169.254/32", "cloud metadata"},
		{"fd00:ec2::254/128", "cloud metadata"},
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "reserved"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"100::/64", "reserved"},
		{"fc00::/7", "unique-local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	} {
		out = append(out, blockedRange{netip.MustParsePrefix(r[0]), r[1]})
	}
	return out
}()

// Prefixes of IPv6 addresses that carry an IPv4 address, which is where
// packets sent to them end up.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")           // ::a.b.c.d (deprecated)
	siit           = netip.MustParsePrefix("::ffff:0:0:0/96") // ::ffff:0:a.b.c.d
	teredo         = netip.MustParsePrefix("2001::/32")       // client IPv4 inverted in the last 32 bits
	sixToFour      = netip.MustParsePrefix("2002::/16")       // IPv4 in bits 16-47
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // IPv4 in the last 32 bits
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")  // operator-routed; IPv4 in the last 32 bits when /96
	unspecified6   = netip.IPv6Unspecified()
	loopback6      = netip.IPv6Loopback()
)

// embeddedIPv4 returns the IPv4 address an IPv6 address carries, and
// false when it carries none. IPv4-mapped addresses are already unmapped.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || a == unspecified6 || a == loopback6 {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case ipv4Compatible.Contains(a), siit.Contains(a), nat64.Contains(a), nat64Local.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case teredo.Contains(a):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

// Blocked returns why a is refused ("loopback", "private", ...), or "" when
// it is a public address.
func Blocked(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	// An address that embeds an IPv4 address is judged by it.
	if v4, ok := embeddedIPv4(a); ok {
		if reason := Blocked(v4); reason != "" {
			return reason
		}
		// The local-use NAT64 prefix is routed inside the operator's
		// network, wherever the IPv4 part points.
		if nat64Local.Contains(a) {
			return "local-use NAT64"
		}
		return ""
	}
	for _, r := range blocked {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}

// CheckURL resolves u's host and refuses it when any of its addresses is
// blocked. Deliveries check again at dial time; this check only gives the
// early, readable answer.
func (g *Guard) CheckURL(ctx context.Context, u *url.URL) error {
	if g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if reason := Blocked(a); reason != "" {
			return &RefusedError{Addr: a.WithZone("").Unmap(), Reason: reason}
		}
		return nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fmt.Errorf("host %q does not resolve", host)
		}
		return fmt.Errorf("host %q could not be resolved: %v", host, err)
	}
	for _, a := range addrs {
		if reason := Blocked(a); reason != "" {
			return fmt.Errorf("host %q resolves to %s, a %s address; deliveries to private networks are refused unless WEBHOOK_ALLOW_PRIVATE=true", host, a.Unmap(), reason)
		}
	}
	return nil
}

// control runs on every connection the client makes, after resolution:
// the address checked is the address dialled.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: cannot check address %q", address)
	}
	if reason := Blocked(ap.Addr()); reason != "" {
		return &RefusedError{Addr: ap.Addr().WithZone("").Unmap(), Reason: reason}
	}
	return nil
}

// Client returns an HTTP client for deliveries: requests time out after
// timeout, redirects are not followed (a 3xx is a failed attempt), no
// proxy is used, and every connection passes the guard.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
