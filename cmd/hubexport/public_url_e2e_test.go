package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublicURLFollowsHTTPAddr: with HTTP_ADDR on a port other than 8080
// and PUBLIC_URL unset, download links point at the listener and a
// download works.
func TestPublicURLFollowsHTTPAddr(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	delete(s.env, "PUBLIC_URL")
	probeFixture(s)
	p := s.start("serve")

	dir := t.TempDir()
	r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", "out.txt")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != endpoint1Lines {
		t.Fatalf("file %q", b)
	}
	j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"endpoint_id": 1}})
	s.wait(adminToken, j.ID, 30e9)
	if _, _, link := s.download(adminToken, j.ID); !strings.HasPrefix(link, s.base+"/api/v1/files/") {
		t.Fatalf("download link %q does not start with %s", link, s.base)
	}
	if strings.Contains(p.Logs(), "public_url_port_mismatch") {
		t.Fatalf("a derived PUBLIC_URL was warned about:\n%s", p.Logs())
	}
}

// TestCLIDownloadLinkPointsNowhere: a PUBLIC_URL on a port nothing listens
// on is warned about at start, and the CLI says which address it tried
// (without the link's signature) and what to check.
func TestCLIDownloadLinkPointsNowhere(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	nowhere := "http://" + freeAddr(t) // closed again: nothing listens there
	s.env["PUBLIC_URL"] = nowhere
	probeFixture(s)
	p := s.start("serve")
	if logs := p.Logs(); !strings.Contains(logs, `"msg":"public_url_port_mismatch"`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("no public_url_port_mismatch warning at start:\n%s", logs)
	}

	dir := t.TempDir()
	r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", "out.txt")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	last := strings.TrimSpace(r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(nowhere, "http://"))
	for _, want := range []string{"download from " + nowhere + "/api/v1/files/", "PUBLIC_URL", "connection refused", "port " + port} {
		if !strings.Contains(last, want) {
			t.Errorf("last line lacks %q:\n%s", want, last)
		}
	}
	for _, secret := range []string{"signature", "expires=", "?"} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("stderr shows the link's query (%q):\n%s", secret, r.stderr)
		}
	}
	if names := filesIn(t, dir); len(names) != 0 {
		t.Fatalf("files left: %v", names)
	}
}
