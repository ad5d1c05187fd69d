package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/seed"
)

const adminToken = "test-admin-token-5f0c"

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	auth := hub.NewAuthenticator(db, adminToken, time.Minute)

	valid := []struct {
		name, token string
		want        export.Principal
	}{
		{"AdminToken", adminToken, export.AdminToken()},
		{"AdminKey", seed.AdminKey, export.Principal{UserID: seed.AdminUserID, KeyID: 1, UserName: "Admin 管理员", KeyName: "admin key", Admin: true}},
		{"UserKey", seed.UserKey, export.Principal{UserID: seed.UserID, KeyID: 2, UserName: "alice", KeyName: "alice laptop 💻"}},
		// Two rows hold this key; the lower id is disabled, so the valid higher one wins.
		{"DuplicateKey", seed.DuplicateKey, export.Principal{UserID: seed.DuplicateKeyUserID, KeyID: 10, UserName: "🦊 Fox Team 🚀", KeyName: "dup (valid copy)"}},
		{"KeyAndUserExpiringLater", seed.FutureKey, export.Principal{UserID: 14, KeyID: 11, UserName: "Future Fay", KeyName: "fay key"}},
	}
	for _, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			got, err := auth.Authenticate(t.Context(), c.token)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got != c.want {
				t.Errorf("principal\n got %+v\nwant %+v", got, c.want)
			}
		})
	}

	invalid := map[string]string{
		"DisabledKey":    seed.DisabledKey,
		"ExpiredKey":     seed.ExpiredKey,
		"DeletedKey":     seed.DeletedKey,
		"DisabledUser":   seed.DisabledUserKey,
		"ExpiredUser":    seed.ExpiredUserKey,
		"DeletedUser":    seed.DeletedUserKey,
		"UnknownKey":     seed.UnknownKey,
		"Empty":          "",
		"ChangeMe":       "change-me",
		"AdminTokenCase": strings.ToUpper(adminToken),
		"KeyPrefix":      seed.UserKey[:len(seed.UserKey)-1],
		"LikePattern":    "sk-seed-user-%",
	}
	for name, token := range invalid {
		t.Run(name, func(t *testing.T) {
			p, err := auth.Authenticate(t.Context(), token)
			if !errors.Is(err, export.ErrUnauthenticated) {
				t.Errorf("Authenticate = %+v, %v; want ErrUnauthenticated", p, err)
			}
			if export.KindOf(err) != export.KindUnauthenticated {
				t.Errorf("kind %v, want KindUnauthenticated", export.KindOf(err))
			}
		})
	}
}

// closedDB is a DB whose every query fails: a token it calls unauthenticated was turned away
// without a query.
func closedDB(t *testing.T) *hub.DB {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	return hub.New(pool)
}

func TestAuthenticateWithoutQuery(t *testing.T) {
	t.Parallel()
	auth := hub.NewAuthenticator(closedDB(t), adminToken, time.Minute)
	for name, token := range map[string]string{
		"Empty":       "",
		"TooLong":     "sk-" + strings.Repeat("a", hub.MaxTokenLen-2),
		"InvalidUTF8": "sk-\xff\xfe",
		"NUL":         "sk-seed\x00",
	} {
		if _, err := auth.Authenticate(t.Context(), token); !errors.Is(err, export.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated without a query", name, err)
		}
	}
	// The admin token needs no database either.
	if p, err := auth.Authenticate(t.Context(), adminToken); err != nil || p != export.AdminToken() {
		t.Errorf("admin token: %+v, %v", p, err)
	}
	// A token of the longest allowed length is looked up, and a dead database is not a bad key.
	_, err := auth.Authenticate(t.Context(), "sk-"+strings.Repeat("a", hub.MaxTokenLen-3))
	if errors.Is(err, export.ErrUnauthenticated) || export.KindOf(err) != export.KindUnavailable {
		t.Errorf("lookup on a dead database: %v, want a KindUnavailable error", err)
	}
}

func TestAdminTokenPlaceholderIgnored(t *testing.T) {
	t.Parallel()
	for _, configured := range []string{"", "change-me"} {
		// The database is dead, so the token can only succeed as the admin token.
		auth := hub.NewAuthenticator(closedDB(t), configured, time.Minute)
		if p, err := auth.Authenticate(t.Context(), configured); err == nil || p.Admin {
			t.Errorf("ADMIN_TOKEN=%q accepted: %+v", configured, p)
		}
	}
}

func TestAuthenticateCache(t *testing.T) {
	t.Parallel()
	pool, db := setup(t)
	const ttl = 300 * time.Millisecond
	auth := hub.NewAuthenticator(db, "", ttl)
	ctx := t.Context()

	if _, err := auth.Authenticate(ctx, seed.UserKey); err != nil {
		t.Fatal(err)
	}
	disabledAt := time.Now()
	if _, err := pool.Exec(ctx, "UPDATE keys SET is_enabled = false WHERE key = $1", seed.UserKey); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the cached success stands (a direct lookup already sees the change).
	if _, err := db.LookupKey(ctx, seed.UserKey); !errors.Is(err, export.ErrUnauthenticated) {
		t.Fatalf("LookupKey of a disabled key: %v", err)
	}
	if _, err := auth.Authenticate(ctx, seed.UserKey); err != nil && time.Since(disabledAt) < ttl {
		t.Errorf("cached key rejected within the TTL: %v", err)
	}
	time.Sleep(ttl - time.Since(disabledAt) + 50*time.Millisecond)
	if _, err := auth.Authenticate(ctx, seed.UserKey); !errors.Is(err, export.ErrUnauthenticated) {
		t.Errorf("disabled key after the TTL: %v, want ErrUnauthenticated", err)
	}

	// Failures are not cached: a key enabled in the hub works at once.
	if _, err := auth.Authenticate(ctx, seed.DisabledKey); !errors.Is(err, export.ErrUnauthenticated) {
		t.Fatalf("disabled key: %v", err)
	}
	if _, err := pool.Exec(ctx, "UPDATE keys SET is_enabled = true WHERE key = $1", seed.DisabledKey); err != nil {
		t.Fatal(err)
	}
	if p, err := auth.Authenticate(ctx, seed.DisabledKey); err != nil || p.KeyID != 3 {
		t.Errorf("re-enabled key: %+v, %v", p, err)
	}
}

// With a failure TTL, a bad token is looked up once per TTL: the second try is answered without
// the database (here closed in between), and only until the TTL ends.
func TestAuthenticateCachesFailures(t *testing.T) {
	t.Parallel()
	pool, db := setup(t)
	const ttl = 300 * time.Millisecond
	auth := hub.NewAuthenticator(db, "", time.Minute).WithFailureTTL(ttl)
	ctx := t.Context()
	if _, err := auth.Authenticate(ctx, seed.DisabledKey); !errors.Is(err, export.ErrUnauthenticated) {
		t.Fatalf("disabled key: %v", err)
	}
	failedAt := time.Now()
	pool.Close()
	if _, err := auth.Authenticate(ctx, seed.DisabledKey); !errors.Is(err, export.ErrUnauthenticated) && time.Since(failedAt) < ttl {
		t.Fatalf("the same bad key again within the TTL: %v, want ErrUnauthenticated with no query", err)
	}
	if _, err := auth.Authenticate(ctx, "sk-another-bad-key"); export.KindOf(err) != export.KindUnavailable {
		t.Fatalf("another bad key: %v, want a lookup (KindUnavailable on the closed pool)", err)
	}
	time.Sleep(ttl - time.Since(failedAt) + 50*time.Millisecond)
	if _, err := auth.Authenticate(ctx, seed.DisabledKey); export.KindOf(err) != export.KindUnavailable {
		t.Fatalf("the bad key after the TTL: %v, want a lookup again", err)
	}
}
