package seed

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"
)

// Known key strings, so tests and demos can authenticate against a seeded hub. Each is valid or
// invalid by CCH's rules (hub-facts §6) as its comment says; the seeded users own them whatever
// the seed.
const (
	// AdminKey belongs to AdminUserID, whose role is 'admin': valid, admin.
	AdminKey = "sk-seed-admin-0001"
	// UserKey belongs to UserID, a normal user: valid, not admin.
	UserKey = "sk-seed-user-0002"
	// DisabledKey (UserID's) has is_enabled = false: invalid.
	DisabledKey = "sk-seed-disabled-0003"
	// ExpiredKey (UserID's) expired an hour before Now: invalid.
	ExpiredKey = "sk-seed-expired-0004"
	// DeletedKey (UserID's) is soft-deleted: invalid.
	DeletedKey = "sk-seed-deleted-0005"
	// DisabledUserKey is an enabled key of a disabled user: invalid.
	DisabledUserKey = "sk-seed-user-disabled-0006"
	// ExpiredUserKey is an enabled key of a user who expired a day before Now: invalid.
	ExpiredUserKey = "sk-seed-user-expired-0007"
	// DeletedUserKey is an enabled key of a soft-deleted user: invalid.
	DeletedUserKey = "sk-seed-user-deleted-0008"
	// DuplicateKey is in two keys rows (keys.key is not unique in CCH): the lower id is disabled
	// and belongs to user 3, the higher is valid and belongs to DuplicateKeyUserID. Valid, as
	// that user. Requests made with it join both keys rows.
	DuplicateKey = "sk-seed-dup-0009"
	// FutureKey belongs to a user and key that both expire a century after Now: valid.
	FutureKey = "sk-seed-future-0011"
	// UnknownKey appears in message_request (user 3) but in no keys row, like a key that was
	// hard-deleted after use: invalid.
	UnknownKey = "sk-seed-unknown-0404"
)

// Ids of the seeded users that tests refer to.
const (
	AdminUserID        = 1
	UserID             = 2
	DuplicateKeyUserID = 4
)

// Names of the users AdminKey and UserKey belong to.
const (
	AdminUserName = "Admin 管理员"
	UserName      = "alice"
)

// Timezone is the seeded system_settings.timezone.
const Timezone = "Asia/Shanghai"

type user struct {
	id         int32
	name, role string
	desc       string
	enabled    bool
	expiresAt  *time.Time
	deletedAt  *time.Time
}

type key struct {
	id, userID int32
	key, name  string
	enabled    bool
	webUI      bool
	expiresAt  *time.Time
	deletedAt  *time.Time
}

type vendor struct {
	id                    int32
	domain, name, siteURL string
}

type provider struct {
	id, vendorID int32
	name, url    string
	typ          string // providers.provider_type
	groupTag     string
	costMult     string // numeric(10,4) as text
	weight       int32
	priority     int32
	deletedAt    *time.Time
	chainHead    []byte // `{"id":N,"name":"...","vendorId":V,"providerType":"..."` for provider_chain
}

type endpoint struct {
	id, vendorID int32
	typ, url     string
	label        string
	sortOrder    int32
	enabled      bool
	deletedAt    *time.Time
	failPerMille int // share of failing probes
}

// requester is who makes a request: a key string and the user the request row names.
type requester struct {
	key    string
	userID int32
	weight int
}

// family groups the endpoints a client talks to and the providers that serve them.
type family struct {
	name      string
	apiType   string
	endpoints []weighted[string]
	models    []string
	providers []*provider
	agents    []string
	weight    int
}

type weighted[T any] struct {
	v T
	w int
}

// world is the fixed part of the data set: everything but the request and probe rows.
type world struct {
	now        time.Time
	users      []user
	keys       []key
	vendors    []vendor
	providers  []*provider
	endpoints  []endpoint
	requesters []requester
	families   []family
	reqWeight  int
	famWeight  int
}

func ptr[T any](v T) *T { return &v }

// newWorld builds the fixtures. Only the random key strings depend on rng.
func newWorld(now time.Time, rng *rand.Rand) *world {
	w := &world{now: now}
	day := 24 * time.Hour
	w.users = []user{
		{id: 1, name: AdminUserName, role: "admin", desc: "seeded administrator", enabled: true},
		{id: 2, name: UserName, role: "user", desc: "normal user with the documented key", enabled: true},
		{id: 3, name: "张伟", role: "user", enabled: true},
		{id: 4, name: "🦊 Fox Team 🚀", role: "user", enabled: true},
		{id: 5, name: "=1+2", role: "user", desc: "formula-like name", enabled: true},
		{id: 6, name: "+86 138 0000 0000", role: "user", enabled: true},
		{id: 7, name: "-rm -rf", role: "user", enabled: true},
		{id: 8, name: "@everyone", role: "user", enabled: true},
		{id: 9, name: "Smith, \"Jo\"\nsecond line", role: "user", desc: "comma, quote and newline", enabled: true},
		{id: 10, name: "  =SUM(A1:A9)", role: "user", desc: "formula after leading spaces", enabled: true},
		{id: 11, name: "Disabled Dan", role: "user", enabled: false},
		{id: 12, name: "Expired Eve", role: "user", enabled: true, expiresAt: ptr(now.Add(-day))},
		{id: 13, name: "Deleted Del", role: "user", enabled: true, deletedAt: ptr(now.Add(-2 * day))},
		{id: 14, name: "Future Fay", role: "user", enabled: true, expiresAt: ptr(now.AddDate(100, 0, 0))},
	}
	w.keys = []key{
		{id: 1, userID: 1, key: AdminKey, name: "admin key", enabled: true, webUI: true},
		{id: 2, userID: 2, key: UserKey, name: "alice laptop 💻", enabled: true, webUI: true},
		{id: 3, userID: 2, key: DisabledKey, name: "alice old (disabled)", enabled: false},
		{id: 4, userID: 2, key: ExpiredKey, name: "alice expired", enabled: true, expiresAt: ptr(now.Add(-time.Hour))},
		{id: 5, userID: 2, key: DeletedKey, name: "alice deleted", enabled: true, deletedAt: ptr(now.Add(-2 * day))},
		{id: 6, userID: 11, key: DisabledUserKey, name: "dan key", enabled: true},
		{id: 7, userID: 12, key: ExpiredUserKey, name: "eve key", enabled: true},
		{id: 8, userID: 13, key: DeletedUserKey, name: "del key", enabled: true},
		{id: 9, userID: 3, key: DuplicateKey, name: "dup (disabled copy)", enabled: false},
		{id: 10, userID: 4, key: DuplicateKey, name: "dup (valid copy)", enabled: true},
		{id: 11, userID: 14, key: FutureKey, name: "fay key", enabled: true, expiresAt: ptr(now.AddDate(100, 0, 0))},
	}
	// One or two random keys for the ordinary users, with names a CSV must escape.
	names := []string{"default", "CI 密钥", "=cmd|' /C calc'!A0", "laptop, work", "+backup", "@ci", "-ops", "key \"quoted\"", "🔑 main"}
	id := int32(len(w.keys))
	for _, uid := range []int32{3, 4, 5, 6, 7, 8, 9, 10, 14} {
		for j := 0; j < 1+int(uid%2); j++ {
			id++
			w.keys = append(w.keys, key{id: id, userID: uid, key: "sk-" + hex64(rng) + hex64(rng), name: names[int(id)%len(names)], enabled: true})
		}
	}

	w.vendors = []vendor{
		{id: 1, domain: "anthropic.com", name: "Anthropic", siteURL: "https://www.anthropic.com"},
		{id: 2, domain: "openai.com", name: "OpenAI", siteURL: "https://openai.com"},
		{id: 3, domain: "relay.example.cn", name: "中转站 Relay", siteURL: "https://relay.example.cn"},
		{id: 4, domain: "googleapis.com", name: "Google", siteURL: "https://ai.google.dev"},
		{id: 5, domain: "deepseek.com", name: "DeepSeek", siteURL: "https://www.deepseek.com"},
	}
	w.providers = []*provider{
		{id: 1, vendorID: 1, name: "Anthropic Official", url: "https://api.anthropic.com", typ: "claude", costMult: "1.0000", weight: 10, priority: 0},
		{id: 2, vendorID: 3, name: "Claude 中转 A", url: "https://relay.example.cn/claude", typ: "claude", groupTag: "cheap", costMult: "0.8500", weight: 5, priority: 1},
		{id: 3, vendorID: 3, name: `=HYPERLINK("https://evil.example","点我")`, url: "https://relay.example.cn/b", typ: "claude", groupTag: "cheap", costMult: "0.8500", weight: 2, priority: 1},
		{id: 4, vendorID: 2, name: "OpenAI Direct", url: "https://api.openai.com", typ: "openai-compatible", costMult: "1.0000", weight: 5},
		{id: 5, vendorID: 2, name: "Codex Pool, Tier 1", url: "https://chatgpt.com/backend-api/codex", typ: "codex", costMult: "1.2000", weight: 5},
		{id: 6, vendorID: 1, name: "Old Anthropic Key", url: "https://api.anthropic.com", typ: "claude", costMult: "1.0000", weight: 1, priority: 2, deletedAt: ptr(now.Add(-7 * day))},
		{id: 7, vendorID: 4, name: "Gemini", url: "https://generativelanguage.googleapis.com", typ: "gemini", costMult: "1.0000", weight: 5},
		{id: 8, vendorID: 5, name: "DeepSeek", url: "https://api.deepseek.com", typ: "openai-compatible", costMult: "0.5000", weight: 3},
	}
	for _, p := range w.providers {
		name, _ := json.Marshal(p.name)
		b := strconv.AppendInt([]byte(`{"id":`), int64(p.id), 10)
		b = append(b, `,"name":`...)
		b = append(b, name...)
		b = append(b, `,"vendorId":`...)
		b = strconv.AppendInt(b, int64(p.vendorID), 10)
		b = append(b, `,"providerType":"`...)
		b = append(b, p.typ...)
		b = append(b, '"')
		p.chainHead = b
	}
	w.endpoints = []endpoint{
		{id: 1, vendorID: 1, typ: "claude", url: "https://api.anthropic.com", label: "Anthropic", enabled: true, failPerMille: 20},
		{id: 2, vendorID: 3, typ: "claude", url: "https://relay.example.cn/claude", label: "中转 A", enabled: true, failPerMille: 150},
		{id: 3, vendorID: 3, typ: "claude", url: "https://relay.example.cn/b", label: "=relay B", sortOrder: 1, enabled: true, failPerMille: 400},
		{id: 4, vendorID: 2, typ: "openai-compatible", url: "https://api.openai.com", label: "OpenAI", enabled: true, failPerMille: 10},
		{id: 5, vendorID: 2, typ: "codex", url: "https://chatgpt.com/backend-api/codex", label: "Codex", enabled: true, failPerMille: 50},
		{id: 6, vendorID: 4, typ: "gemini", url: "https://generativelanguage.googleapis.com", label: "Gemini", enabled: true, failPerMille: 30},
		{id: 7, vendorID: 5, typ: "openai-compatible", url: "https://api.deepseek.com", label: "DeepSeek (down)", enabled: false, failPerMille: 1000},
		{id: 8, vendorID: 3, typ: "claude", url: "https://old-relay.example.cn", label: "retired relay", enabled: true, failPerMille: 100, deletedAt: ptr(now.Add(-12 * time.Hour))},
	}

	// Who sends requests, and how often. Keys that are invalid today were used before they were
	// disabled, expired or deleted; UnknownKey has no keys row at all.
	w.requesters = []requester{
		{AdminKey, 1, 6}, {UserKey, 2, 20}, {DisabledKey, 2, 2}, {ExpiredKey, 2, 2}, {DeletedKey, 2, 2},
		{DisabledUserKey, 11, 2}, {ExpiredUserKey, 12, 2}, {DeletedUserKey, 13, 2},
		{DuplicateKey, DuplicateKeyUserID, 1}, {FutureKey, 14, 3}, {UnknownKey, 3, 1},
	}
	for _, k := range w.keys[11:] {
		w.requesters = append(w.requesters, requester{k.key, k.userID, 6})
	}
	for _, r := range w.requesters {
		w.reqWeight += r.weight
	}

	p := w.providers
	w.families = []family{
		{name: "claude", apiType: "claude", weight: 70,
			endpoints: []weighted[string]{{"/v1/messages", 88}, {"/v1/messages/count_tokens", 12}},
			models:    []string{"claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001", "claude-sonnet-4-20250514"},
			providers: []*provider{p[0], p[0], p[0], p[1], p[1], p[2], p[5]},
			agents:    []string{"claude-cli/2.0.31 (external, cli)", "claude-cli/2.0.14 (external, vscode)", "claude-cli/1.0.128 (external, cli)"}},
		{name: "openai", apiType: "openai", weight: 12,
			endpoints: []weighted[string]{{"/v1/chat/completions", 1}},
			models:    []string{"gpt-4.1", "gpt-4o-mini", "deepseek-chat"},
			providers: []*provider{p[3], p[3], p[7]},
			agents:    []string{"OpenAI/Python 1.109.1", "Cherry Studio/1.6.3"}},
		{name: "codex", apiType: "codex", weight: 13,
			endpoints: []weighted[string]{{"/v1/responses", 85}, {"/v1/responses/compact", 15}},
			models:    []string{"gpt-5-codex", "gpt-5"},
			providers: []*provider{p[4]},
			agents:    []string{"codex_cli_rs/0.46.0 (Mac OS 15.6.1; arm64)", "codex_vscode/0.44.0"}},
		{name: "gemini", apiType: "gemini", weight: 5,
			endpoints: []weighted[string]{{"/v1beta/models/gemini-2.5-pro:streamGenerateContent", 1}},
			models:    []string{"gemini-2.5-pro", "gemini-2.5-flash"},
			providers: []*provider{p[6]},
			agents:    []string{"GeminiCLI/0.9.0 (darwin; arm64)"}},
	}
	for _, f := range w.families {
		w.famWeight += f.weight
	}
	return w
}

func pick[T any](rng *rand.Rand, items []weighted[T]) T {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := rng.IntN(total)
	for _, it := range items {
		if n < it.w {
			return it.v
		}
		n -= it.w
	}
	return items[len(items)-1].v
}

const hexDigits = "0123456789abcdef"

// hex64 is 16 hex digits from rng.
func hex64(rng *rand.Rand) string {
	var b [16]byte
	x := rng.Uint64()
	for i := range b {
		b[i] = hexDigits[x&15]
		x >>= 4
	}
	return string(b[:])
}
