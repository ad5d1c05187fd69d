package hub

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgretry"
)

// MaxTokenLen is the longest token looked up; CCH's keys are far shorter, and a longer one is
// rejected without a query.
const MaxTokenLen = 512

// lookupKeySQL applies CCH's rules for a valid user API key (hub-facts §6). keys.key is not
// unique, so the lowest valid id wins.
const lookupKeySQL = `
	SELECT k.id, k.name, u.id, u.name, COALESCE(u.role = 'admin', false)
	FROM keys k
	JOIN users u ON u.id = k.user_id
	WHERE k.key = $1
		AND k.deleted_at IS NULL AND u.deleted_at IS NULL
		AND k.is_enabled = true AND (k.expires_at IS NULL OR k.expires_at > now())
		AND u.is_enabled = true AND (u.expires_at IS NULL OR u.expires_at > now())
	ORDER BY k.id
	LIMIT 1`

// LookupKey returns the principal of a valid CCH user API key, or export.ErrUnauthenticated
// when no key row makes it valid. A database failure is an error of kind KindUnavailable.
func (d *DB) LookupKey(ctx context.Context, key string) (export.Principal, error) {
	// Postgres rejects NUL and invalid UTF-8 in text with an error; such a token is simply
	// not a key.
	if key == "" || len(key) > MaxTokenLen || !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		return export.Principal{}, export.ErrUnauthenticated
	}
	var p export.Principal
	err := pgretry.Read(ctx, d.pool, func() error {
		return d.pool.QueryRow(ctx, lookupKeySQL, key).Scan(&p.KeyID, &p.KeyName, &p.UserID, &p.UserName, &p.Admin)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return export.Principal{}, export.ErrUnauthenticated
	}
	if err != nil {
		return export.Principal{}, &export.Error{
			Kind:    export.KindUnavailable,
			Code:    "hub_unavailable",
			Message: "the hub's database cannot be reached to check the API key; try again shortly",
			Err:     err,
		}
	}
	return p, nil
}

// maxCacheEntries bounds the cache of successful lookups.
const maxCacheEntries = 10_000

// Authenticator checks tokens: the admin token, else a CCH user API key. Successful key
// lookups are cached for a short TTL, so a key disabled in the hub stops working within that
// TTL. Failed lookups are cached only if WithFailureTTL says so (then a key enabled in the hub
// works within that TTL, and a stream of bad tokens costs one query per token and TTL).
type Authenticator struct {
	db       *DB
	admin    [sha256.Size]byte
	hasAdmin bool
	ttl      time.Duration
	failTTL  time.Duration

	mu         sync.Mutex
	cache      map[[sha256.Size]byte]cacheEntry // keyed by SHA-256 of the token, never the token
	failed     map[[sha256.Size]byte]time.Time  // token digest → when its failure is forgotten
	maxEntries int
	now        func() time.Time
}

type cacheEntry struct {
	p       export.Principal
	expires time.Time
}

// NewAuthenticator returns an Authenticator over db. adminToken is ignored when empty or the
// placeholder "change-me", as in CCH. cacheTTL <= 0 disables the cache.
func NewAuthenticator(db *DB, adminToken string, cacheTTL time.Duration) *Authenticator {
	a := &Authenticator{
		db:         db,
		ttl:        cacheTTL,
		cache:      make(map[[sha256.Size]byte]cacheEntry),
		failed:     make(map[[sha256.Size]byte]time.Time),
		maxEntries: maxCacheEntries,
		now:        time.Now,
	}
	if adminToken != "" && adminToken != "change-me" {
		a.admin = sha256.Sum256([]byte(adminToken))
		a.hasAdmin = true
	}
	return a
}

// WithFailureTTL makes a failed key lookup answer again without a query for ttl; 0 (the
// default) never caches failures.
func (a *Authenticator) WithFailureTTL(ttl time.Duration) *Authenticator {
	a.failTTL = ttl
	return a
}

// Authenticate implements export.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (export.Principal, error) {
	if token == "" {
		return export.Principal{}, export.ErrUnauthenticated
	}
	// Comparing digests keeps the comparison constant-time whatever the lengths.
	h := sha256.Sum256([]byte(token))
	if a.hasAdmin && subtle.ConstantTimeCompare(h[:], a.admin[:]) == 1 {
		return export.AdminToken(), nil
	}
	if len(token) > MaxTokenLen {
		return export.Principal{}, export.ErrUnauthenticated
	}
	if p, ok := a.cached(h); ok {
		return p, nil
	}
	if a.knownBad(h) {
		return export.Principal{}, export.ErrUnauthenticated
	}
	p, err := a.db.LookupKey(ctx, token)
	if errors.Is(err, export.ErrUnauthenticated) {
		a.rememberBad(h)
	}
	if err != nil {
		return export.Principal{}, err
	}
	a.remember(h, p)
	return p, nil
}

func (a *Authenticator) cached(h [sha256.Size]byte) (export.Principal, bool) {
	if a.ttl <= 0 {
		return export.Principal{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cache[h]
	if !ok {
		return export.Principal{}, false
	}
	if !a.now().Before(e.expires) {
		delete(a.cache, h)
		return export.Principal{}, false
	}
	return e.p, true
}

func (a *Authenticator) knownBad(h [sha256.Size]byte) bool {
	if a.failTTL <= 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.failed[h]
	if ok && !a.now().Before(until) {
		delete(a.failed, h)
		return false
	}
	return ok
}

func (a *Authenticator) rememberBad(h [sha256.Size]byte) {
	if a.failTTL <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.failed) >= a.maxEntries {
		for k, until := range a.failed {
			if !now.Before(until) {
				delete(a.failed, k)
			}
		}
		if len(a.failed) >= a.maxEntries {
			clear(a.failed) // a flood of distinct bad tokens: start over rather than grow
		}
	}
	a.failed[h] = now.Add(a.failTTL)
}

func (a *Authenticator) remember(h [sha256.Size]byte, p export.Principal) {
	if a.ttl <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if _, ok := a.cache[h]; !ok && len(a.cache) >= a.maxEntries {
		a.evict(now)
	}
	a.cache[h] = cacheEntry{p: p, expires: now.Add(a.ttl)}
}

// evict drops the expired entries, or if none has expired the one closest to expiry (all
// entries share a TTL, so that is the oldest). It scans the map, which only happens when the
// cache is full.
func (a *Authenticator) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	dropped := false
	for h, e := range a.cache {
		if !now.Before(e.expires) {
			delete(a.cache, h)
			dropped = true
			continue
		}
		if oldestAt.IsZero() || e.expires.Before(oldestAt) {
			oldest, oldestAt = h, e.expires
		}
	}
	if !dropped && !oldestAt.IsZero() {
		delete(a.cache, oldest)
	}
}

var _ export.Authenticator = (*Authenticator)(nil)
