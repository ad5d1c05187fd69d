package hub

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

func TestCacheBoundAndExpiry(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthenticator(nil, "", 30*time.Second)
	a.maxEntries = 3
	a.now = func() time.Time { return clock }
	tok := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	has := func(s string) bool { _, ok := a.cached(tok(s)); return ok }

	for i, s := range []string{"a", "b", "c"} {
		a.remember(tok(s), export.Principal{UserID: int64(i)})
		clock = clock.Add(time.Second)
	}
	a.remember(tok("d"), export.Principal{UserID: 3}) // full: the oldest, "a", goes
	if has("a") || !has("b") || !has("c") || !has("d") || len(a.cache) != 3 {
		t.Errorf("after overflow: a=%v b=%v c=%v d=%v len=%d", has("a"), has("b"), has("c"), has("d"), len(a.cache))
	}

	clock = clock.Add(29 * time.Second) // b (t=1s) and c (t=2s) have expired, d (t=3s) not yet
	a.remember(tok("e"), export.Principal{UserID: 4})
	if len(a.cache) != 2 || !has("d") || !has("e") {
		t.Errorf("expired entries not swept: len=%d d=%v e=%v", len(a.cache), has("d"), has("e"))
	}
	clock = clock.Add(time.Second)
	if has("d") {
		t.Error("d served after its TTL")
	}
	if p, ok := a.cached(tok("e")); !ok || p.UserID != 4 {
		t.Errorf("e = %+v, %v", p, ok)
	}
}

func TestEscapeLike(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"100%":      `100\%`,
		"a_b":       `a\_b`,
		`back\lash`: `back\\lash`,
		`%_\`:       `\%\_\\`,
	} {
		if got := escapeLike(in); got != want {
			t.Errorf("escapeLike(%q) = %q, want %q", in, got, want)
		}
	}
}
