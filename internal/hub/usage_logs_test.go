package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
	"github.com/hubexport/hubexport/internal/usagelog"
)

// usageFixture is a hub with the seeded users, keys and providers but no seeded traffic, and
// hand-made requests covering every rule of hub-facts §2: awkward names, a NULL provider, NULL
// tokens, a warmup with NULL cost, costs past 15 significant digits, each retry-count case, the
// hidden endpoints, a soft-deleted request, a request whose key row is gone, a key string in two
// keys rows, prefix-affinity sessions, a created_at tie and a NULL created_at. Request ids say
// which row is which; times count back from 2026-01-29T10:30:00Z.
const usageFixture = `
INSERT INTO message_request (id, user_id, key, provider_id, model, original_model, endpoint, status_code,
	input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
	cache_creation_5m_input_tokens, cache_creation_1h_input_tokens, cost_usd, duration_ms,
	session_id, session_identity, session_identity_kind, provider_chain, blocked_by, created_at, deleted_at)
VALUES
	(1001, 5, (SELECT key FROM keys WHERE user_id = 5 ORDER BY id LIMIT 1), 1, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-20250514', '/v1/messages', 200,
		1500, 3200, 0, 1200, 0, 0, 1.234567890123456, 2450, 'sess_a', NULL, NULL,
		'[{"id":1,"reason":"retry_failed","statusCode":502},{"id":1,"reason":"retry_success","statusCode":200}]', NULL, '2026-01-29T10:30:00Z', NULL),
	(1002, 9, (SELECT key FROM keys WHERE user_id = 9 ORDER BY id LIMIT 1), 0, 'claude-haiku-4-5-20251001', 'claude-haiku-4-5-20251001', '/v1/messages', 200,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, 'sess_warm', NULL, NULL,
		NULL, 'warmup', '2026-01-29T10:29:59Z', NULL),
	(1003, 2, 'sk-seed-user-0002', 3, NULL, NULL, '/v1/chat/completions', NULL,
		10, NULL, 300, NULL, 100, 200, 0.000123000000000, NULL, 'sess_phys', 'pfx:abc', 'prefix_affinity',
		'[{"id":3,"reason":"hedge_triggered"},{"id":3,"reason":"hedge_winner","statusCode":200},{"id":3,"reason":"retry_failed","statusCode":500}]', NULL, '2026-01-29T10:29:58.123456Z', NULL),
	(1004, 4, 'sk-seed-dup-0009', 5, 'gpt-5-codex', 'gpt-5-codex', '/v1/responses', 429,
		NULL, NULL, NULL, NULL, NULL, NULL, 0, 812, 'sess_cli', 'sid:xyz', 'session_id',
		'[{"id":5,"reason":"retry_failed","statusCode":429},{"id":5,"reason":"retry_failed","statusCode":429},{"id":5,"reason":"system_error"}]', NULL, '2026-01-29T10:29:57Z', NULL),
	(1005, 10, (SELECT key FROM keys WHERE user_id = 10 ORDER BY id LIMIT 1), 6, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', '/v1/messages/count_tokens', 200,
		42, 0, NULL, NULL, NULL, NULL, 0, 30, 'sess_d', NULL, NULL,
		'[{"id":6,"reason":"request_success","statusCode":200}]', NULL, '2026-01-29T10:29:56Z', NULL),
	(1006, 3, 'sk-seed-unknown-0404', 1, 'claude-sonnet-4-5-20250929', NULL, '/v1/messages', 200,
		1, 1, 0, 0, 0, 0, 0.1, 10, 'sess_x', NULL, NULL, NULL, NULL, '2026-01-29T10:29:55Z', NULL),
	(1007, 2, 'sk-seed-user-0002', 1, 'claude-sonnet-4-5-20250929', NULL, '/v1/messages', 200,
		1, 1, 0, 0, 0, 0, 0.1, 10, 'sess_x', NULL, NULL, NULL, NULL, '2026-01-29T10:29:54Z', '2026-01-29T11:00:00Z'),
	(1008, 13, 'sk-seed-user-deleted-0008', 2, 'gpt-5-codex', 'gpt-5-codex', '/v1/responses/compact', 500,
		NULL, NULL, NULL, NULL, NULL, NULL, 0, 70, 'sess_f', NULL, NULL,
		'[{"id":2,"reason":"initial_selection"},{"id":2,"reason":"request_success","statusCode":0}]', NULL, '2026-01-29T10:29:53Z', NULL),
	(1009, 1, 'sk-seed-admin-0001', 1, 'claude-opus-4-1-20250805', 'claude-opus-4-1-20250805', '/v1/messages/', 200,
		999999999, 1, 0, 0, 0, 0, 999999.999999999999999, 60000, 'sess_b', NULL, NULL,
		'[{"id":1,"reason":"initial_selection"},{"id":1,"reason":"request_success","statusCode":200},{"id":1,"reason":"client_abort"}]', NULL, '2026-01-29T10:29:52Z', NULL),
	(1010, 1, 'sk-seed-admin-0001', 1, 'claude-opus-4-1-20250805', 'claude-opus-4-1-20250805', '/v1/messages/', 200,
		1, 2, 0, 0, 0, 0, 0.000015000000000, 100, NULL, NULL, NULL,
		'[{"reason":"concurrent_limit_failed"},{"reason":"endpoint_pool_exhausted"},{"reason":"vendor_type_all_timeout"},{"reason":"http2_fallback"},{"reason":"resource_not_found"},{"reason":"client_error_non_retryable","statusCode":400},{"reason":"session_reuse"}]', NULL, '2026-01-29T10:29:52Z', NULL),
	(1011, 2, 'sk-seed-deleted-0005', 2, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', '/v1/messages', 503,
		NULL, NULL, NULL, NULL, NULL, NULL, 0, 5, 'sess_c', NULL, NULL,
		'[{"reason":"retry_failed","statusCode":500},{"reason":"hedge_loser_billed"},{"reason":"retry_success","statusCode":200}]', NULL, '2026-01-29T10:29:51Z', NULL),
	(1012, 10, (SELECT key FROM keys WHERE user_id = 10 ORDER BY id LIMIT 1), 6, 'gemini-2.5-pro', 'gemini-2.5-pro', '/v1beta/models/gemini-2.5-pro:streamGenerateContent', 200,
		5, 5, 0, 0, 0, 0, 0.1, 7, 'sess_d', NULL, NULL,
		'{"id":6,"reason":"retry_failed"}', NULL, '2026-01-29T10:29:50Z', NULL),
	(1013, 5, (SELECT key FROM keys WHERE user_id = 5 ORDER BY id OFFSET 1 LIMIT 1), 8, 'deepseek-chat', 'gpt-4o-mini', '/v1/chat/completions', 200,
		100, 50, 10, 5, 10, 0, 123456.123456789012345, 1234, 'sess_e', NULL, NULL,
		'[{"reason":"retry_success","statusCode":"0"},{"reason":"retry_failed"},{"reason":"request_success","statusCode":null},{"reason":"request_success","statusCode":false},{"reason":"request_success","statusCode":""}]', NULL, '2026-01-29T10:29:49Z', NULL),
	(1014, 2, 'sk-seed-user-0002', 1, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', '/v1/messages', 200,
		NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL,
		'[1, "retry_failed", {"reason":"retry_failed"}, {"reason":"retry_failed","statusCode":500}]', NULL, NULL, NULL),
	(1015, 6, 'sk-seed-dup-0009', 7, 'gemini-2.5-flash', 'gemini-2.5-flash', '/v1beta/models/gemini-2.5-flash:streamGenerateContent', 200,
		1, 1, 0, 0, 0, 0, 0.000001, 9, 'sess_g', NULL, NULL, NULL, NULL, '2026-01-29T10:29:48Z', NULL);

INSERT INTO usage_ledger (id, request_id, user_id, key, provider_id, final_provider_id, model, original_model, endpoint,
	status_code, is_success, blocked_by, cost_usd, input_tokens, output_tokens, duration_ms, session_id, created_at)
VALUES
	(3001, 2001, 2, 'sk-seed-user-0002', 3, 1, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', '/v1/messages',
		200, true, NULL, 0.500000000000000, 10, 20, 100, 'sess_l1', '2026-01-29T09:30:00Z'),
	(3002, 2002, 99, 'sk-gone-abcdef123456', 0, 0, 'gpt-4.1', 'gpt-4.1', '/v1/chat/completions',
		200, true, NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-29T08:30:00Z'),
	(3003, 2003, 2, 'sk-seed-user-0002', 0, 0, 'claude-haiku-4-5-20251001', NULL, '/v1/messages',
		200, false, 'warmup', NULL, NULL, NULL, 2, 'sess_w', '2026-01-29T07:30:00Z'),
	(3004, 2004, 4, 'sk-seed-dup-0009', 5, 5, 'gpt-5-codex', 'gpt-5-codex', '/v1/responses',
		200, true, NULL, 1.000000000000000, 1, 1, 10, 'sess_l4', '2026-01-29T06:30:00Z');
`

func buildUsageHub(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := seed.Run(ctx, pool, seed.Options{Rows: 0, Seed: 1, Now: seedNow}); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, usageFixture); err != nil {
		return fmt.Errorf("usage fixture: %w", err)
	}
	// The planner estimates from statistics; give it some.
	_, err = pool.Exec(ctx, "ANALYZE")
	return err
}

func usageSetup(t *testing.T) (*pgxpool.Pool, *hub.DB) {
	t.Helper()
	dsn := testenv.PostgresFrom(t, "hub-usage-fixture", buildUsageHub)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, hub.New(pool)
}

func usageRows(t *testing.T, db *hub.DB, p export.UsageLogParams) []export.UsageRow {
	t.Helper()
	var out []export.UsageRow
	if err := db.UsageLogs(t.Context(), p, func(r *export.UsageRow) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatalf("UsageLogs(%+v): %v", p, err)
	}
	return out
}

func usageIDs(t *testing.T, db *hub.DB, p export.UsageLogParams) []int64 {
	t.Helper()
	ids := []int64{}
	for _, r := range usageRows(t, db, p) {
		ids = append(ids, r.ID)
	}
	return ids
}

func usageAt(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func usageInt(v int64) *int64 { return &v }

// The fixture's CSV in both zones; the header is the only difference between languages.
const (
	usageHeaderZH = "\uFEFF时间,用户,密钥,供应商,模型,原始模型,端点,状态码,输入 Token,输出 Token,缓存写入 5m,缓存写入 1h,缓存读取,总 Token,成本(USD),耗时(ms),Session ID,重试次数\n"
	usageHeaderEN = "\uFEFFTime,User,Key,Provider,Model,Original Model,Endpoint,Status Code,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD),Duration (ms),Session ID,Retry Count\n"
)

var usageLines = []struct{ utc, shanghai, rest string }{
	{"2026-01-29T10:30:00.000Z", "2026-01-29T18:30:00.000+08:00", `,'=1+2,'-ops,Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-20250514,/v1/messages,200,1500,3200,0,0,1200,5900,1.23456789012346,2450,sess_a,1`},
	{"2026-01-29T10:29:59.000Z", "2026-01-29T18:29:59.000+08:00", `,"Smith, ""Jo""` + "\n" + `second line","laptop, work",,claude-haiku-4-5-20251001,claude-haiku-4-5-20251001,/v1/messages,200,0,0,0,0,0,0,0,3,sess_warm,0`},
	{"2026-01-29T10:29:58.123Z", "2026-01-29T18:29:58.123+08:00", `,alice,alice laptop 💻,"'=HYPERLINK(""https://evil.example"",""点我"")",,,/v1/chat/completions,,10,0,100,200,0,310,0.000123,,sess_phys,0`},
	{"2026-01-29T10:29:57.000Z", "2026-01-29T18:29:57.000+08:00", `,🦊 Fox Team 🚀,dup (valid copy),"Codex Pool, Tier 1",gpt-5-codex,gpt-5-codex,/v1/responses,429,0,0,0,0,0,0,0,812,sid:xyz,2`},
	{"2026-01-29T10:29:52.000Z", "2026-01-29T18:29:52.000+08:00", `,Admin 管理员,admin key,Anthropic Official,claude-opus-4-1-20250805,claude-opus-4-1-20250805,/v1/messages/,200,1,2,0,0,0,3,0.000015,100,,5`},
	{"2026-01-29T10:29:52.000Z", "2026-01-29T18:29:52.000+08:00", `,Admin 管理员,admin key,Anthropic Official,claude-opus-4-1-20250805,claude-opus-4-1-20250805,/v1/messages/,200,999999999,1,0,0,0,1000000000,1000000,60000,sess_b,1`},
	{"2026-01-29T10:29:51.000Z", "2026-01-29T18:29:51.000+08:00", `,alice,alice deleted,Claude 中转 A,claude-sonnet-4-5-20250929,claude-sonnet-4-5-20250929,/v1/messages,503,0,0,0,0,0,0,0,5,sess_c,0`},
	{"2026-01-29T10:29:50.000Z", "2026-01-29T18:29:50.000+08:00", `,'  =SUM(A1:A9),'@ci,Old Anthropic Key,gemini-2.5-pro,gemini-2.5-pro,/v1beta/models/gemini-2.5-pro:streamGenerateContent,200,5,5,0,0,0,10,0.1,7,sess_d,0`},
	{"2026-01-29T10:29:49.000Z", "2026-01-29T18:29:49.000+08:00", `,'=1+2,"key ""quoted""",DeepSeek,deepseek-chat,gpt-4o-mini,/v1/chat/completions,200,100,50,10,0,5,165,123456.123456789,1234,sess_e,1`},
	{"2026-01-29T10:29:48.000Z", "2026-01-29T18:29:48.000+08:00", `,'+86 138 0000 0000,dup (disabled copy),Gemini,gemini-2.5-flash,gemini-2.5-flash,/v1beta/models/gemini-2.5-flash:streamGenerateContent,200,1,1,0,0,0,2,0.000001,9,sess_g,0`},
	{"", "", `,alice,alice laptop 💻,Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-5-20250929,/v1/messages,200,0,0,0,0,0,0,0,,,1`},
}

var usageDefaultIDs = []int64{1001, 1002, 1003, 1004, 1010, 1009, 1011, 1012, 1013, 1015, 1014}

func usageCSV(t *testing.T, db *hub.DB, p export.UsageLogParams) string {
	t.Helper()
	loc, err := export.LoadZone("timezone", p.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc, err := usagelog.NewCSV(&buf, usagelog.Options{Lang: p.HeaderLang, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UsageLogs(t.Context(), p, enc.Write); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestUsageLogCSVBytes(t *testing.T) {
	t.Parallel()
	_, db := usageSetup(t)
	var utc, shanghai strings.Builder
	for _, l := range usageLines {
		utc.WriteString(l.utc + l.rest + "\n")
		shanghai.WriteString(l.shanghai + l.rest + "\n")
	}
	cases := []struct {
		lang, zone, want string
	}{
		{"zh", "UTC", usageHeaderZH + utc.String()},
		{"en", "UTC", usageHeaderEN + utc.String()},
		{"zh", "Asia/Shanghai", usageHeaderZH + shanghai.String()},
		{"en", "Asia/Shanghai", usageHeaderEN + shanghai.String()},
	}
	for _, c := range cases {
		got := usageCSV(t, db, export.UsageLogParams{HeaderLang: c.lang, Timezone: c.zone})
		if got != c.want {
			gl, wl := strings.SplitAfter(got, "\n"), strings.SplitAfter(c.want, "\n")
			for i := range max(len(gl), len(wl)) {
				var g, w string
				if i < len(gl) {
					g = gl[i]
				}
				if i < len(wl) {
					w = wl[i]
				}
				if g != w {
					t.Errorf("%s %s: line %d\n got %q\nwant %q", c.lang, c.zone, i+1, g, w)
				}
			}
		}
	}
}

func TestUsageLogFilters(t *testing.T) {
	t.Parallel()
	_, db := usageSetup(t)
	cases := []struct {
		name string
		p    export.UsageLogParams
		want []int64
	}{
		{"NoFilter", export.UsageLogParams{}, usageDefaultIDs},
		{"UserAlone", export.UsageLogParams{UserID: usageInt(2)}, []int64{1003, 1011, 1014}},
		{"UserOnlyInHiddenRows", export.UsageLogParams{UserID: usageInt(13)}, []int64{}},
		{"KeyAlone", export.UsageLogParams{KeyID: usageInt(2)}, []int64{1003, 1014}},
		{"KeyEitherDuplicateRow", export.UsageLogParams{KeyID: usageInt(9)}, []int64{1004, 1015}},
		{"KeyOtherDuplicateRow", export.UsageLogParams{KeyID: usageInt(10)}, []int64{1004, 1015}},
		{"KeySoftDeleted", export.UsageLogParams{KeyID: usageInt(5)}, []int64{1011}},
		{"KeyUnknown", export.UsageLogParams{KeyID: usageInt(9999)}, []int64{}},
		{"ProviderAlone", export.UsageLogParams{ProviderID: usageInt(1)}, []int64{1001, 1010, 1009, 1014}},
		{"ProviderZeroIsBlocked", export.UsageLogParams{ProviderID: usageInt(0)}, []int64{1002}},
		{"SessionPhysical", export.UsageLogParams{SessionID: "sess_phys"}, []int64{1003}},
		{"SessionPrefixIdentity", export.UsageLogParams{SessionID: "pfx:abc"}, []int64{1003}},
		{"SessionCanonicalIdentity", export.UsageLogParams{SessionID: "sid:xyz"}, []int64{1004}},
		{"SessionPhysicalUnderIdentity", export.UsageLogParams{SessionID: "sess_cli"}, []int64{1004}},
		{"SessionCanonicalNeverPhysical", export.UsageLogParams{SessionID: "sid:sess_cli"}, []int64{}},
		{"StartInclusiveEndExclusive", export.UsageLogParams{StartTime: usageAt("2026-01-29T10:29:52Z"), EndTime: usageAt("2026-01-29T10:29:58.123456Z")}, []int64{1004, 1010, 1009}},
		{"StartAlone", export.UsageLogParams{StartTime: usageAt("2026-01-29T10:29:58.123456Z")}, []int64{1001, 1002, 1003}},
		{"EndAlone", export.UsageLogParams{EndTime: usageAt("2026-01-29T10:29:50Z")}, []int64{1013, 1015}},
		// A feed's mark inside a created_at tie (1009 and 1010): the tie's later id still comes.
		{"FeedAfterTie", export.UsageLogParams{After: &export.FeedMark{CreatedAt: *usageAt("2026-01-29T10:29:52Z"), ID: 1009}}, []int64{1001, 1002, 1003, 1004, 1010}},
		{"FeedAfterTieToCutOff", export.UsageLogParams{After: &export.FeedMark{CreatedAt: *usageAt("2026-01-29T10:29:52Z"), ID: 1010},
			EndTime: usageAt("2026-01-29T10:29:58.123456Z")}, []int64{1004}},
		{"StatusAlone", export.UsageLogParams{StatusCode: usageInt(200)}, []int64{1001, 1002, 1010, 1009, 1012, 1013, 1015, 1014}},
		{"StatusWinsOverExclude200", export.UsageLogParams{StatusCode: usageInt(200), ExcludeStatus200: true}, []int64{1001, 1002, 1010, 1009, 1012, 1013, 1015, 1014}},
		{"Exclude200KeepsNULL", export.UsageLogParams{ExcludeStatus200: true}, []int64{1003, 1004, 1011}},
		{"ModelExact", export.UsageLogParams{Model: "claude-opus-4-1-20250805"}, []int64{1010, 1009}},
		{"ModelIgnoresOriginal", export.UsageLogParams{Model: "gpt-4o-mini"}, []int64{}},
		{"EndpointNormalised", export.UsageLogParams{Endpoint: "/V1/Messages"}, []int64{1001, 1002, 1010, 1009, 1011, 1014}},
		{"EndpointShowsCountTokens", export.UsageLogParams{Endpoint: "/v1/messages/count_tokens/"}, []int64{1005}},
		{"EndpointShowsCompact", export.UsageLogParams{Endpoint: "/v1/responses/compact"}, []int64{1008}},
		{"MinRetry1", export.UsageLogParams{MinRetryCount: 1}, []int64{1001, 1004, 1010, 1009, 1013, 1014}},
		{"MinRetry2", export.UsageLogParams{MinRetryCount: 2}, []int64{1004, 1010}},
		{"MinRetry5", export.UsageLogParams{MinRetryCount: 5}, []int64{1010}},
		{"MinRetry6", export.UsageLogParams{MinRetryCount: 6}, []int64{}},
		{"UserAndRetry", export.UsageLogParams{UserID: usageInt(1), MinRetryCount: 2}, []int64{1010}},
		{"ProviderAndExclude200", export.UsageLogParams{ProviderID: usageInt(1), ExcludeStatus200: true}, []int64{}},
		{"UserStatusModel", export.UsageLogParams{UserID: usageInt(2), StatusCode: usageInt(503), Model: "claude-sonnet-4-5-20250929"}, []int64{1011}},
		{"KeyWindowEndpoint", export.UsageLogParams{KeyID: usageInt(2), StartTime: usageAt("2026-01-29T10:00:00Z"), Endpoint: "/v1/chat/completions"}, []int64{1003}},
		{"UserSessionEndpointHidden", export.UsageLogParams{UserID: usageInt(10), SessionID: "sess_d"}, []int64{1012}},
		{"UserSessionEndpointGiven", export.UsageLogParams{UserID: usageInt(10), SessionID: "sess_d", Endpoint: "/v1/messages/count_tokens"}, []int64{1005}},
		{"Everything", export.UsageLogParams{UserID: usageInt(5), KeyID: usageInt(16), ProviderID: usageInt(8), SessionID: "sess_e",
			StartTime: usageAt("2026-01-29T10:29:49Z"), EndTime: usageAt("2026-01-29T10:29:50Z"), StatusCode: usageInt(200),
			Model: "deepseek-chat", Endpoint: "/v1/chat/completions/", MinRetryCount: 1}, []int64{1013}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := usageIDs(t, db, c.p); !slices.Equal(got, c.want) {
				t.Errorf("ids %v, want %v", got, c.want)
			}
		})
	}
}

// The retry count of each chain shape (hub-facts §2.3), read off the column.
func TestUsageLogRetryCount(t *testing.T) {
	t.Parallel()
	_, db := usageSetup(t)
	want := map[int64]int64{
		1001: 1, // retry_failed + retry_success: two requests
		1002: 0, // no chain
		1003: 0, // hedge race, despite a retry_failed
		1004: 2, // three failures
		1005: 0, // one success
		1008: 0, // a success without a truthy statusCode is not a request; selection is not either
		1009: 1, // success + client_abort
		1010: 5, // every counted failure reason; session_reuse does not count
		1011: 0, // hedge_loser_billed is a hedge too
		1012: 0, // not an array
		1013: 1, // "0" is a truthy string; null, false and "" are not
		1014: 1, // non-object elements are ignored
		1015: 0,
	}
	rows := usageRows(t, db, export.UsageLogParams{Endpoint: "/v1/messages/count_tokens"})
	rows = append(rows, usageRows(t, db, export.UsageLogParams{Endpoint: "/v1/responses/compact"})...)
	rows = append(rows, usageRows(t, db, export.UsageLogParams{})...)
	seen := map[int64]bool{}
	for _, r := range rows {
		seen[r.ID] = true
		if w, ok := want[r.ID]; ok && r.RetryCount != w {
			t.Errorf("request %d: retry count %d, want %d", r.ID, r.RetryCount, w)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("request %d not exported", id)
		}
	}
}

func TestUsageLogLedgerFallback(t *testing.T) {
	t.Parallel()
	pool, db := usageSetup(t)
	if _, err := pool.Exec(t.Context(), "DELETE FROM message_request"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    export.UsageLogParams
		want []int64
	}{
		{"All", export.UsageLogParams{}, []int64{2001, 2002, 2004}}, // the warmup is not billed
		{"User", export.UsageLogParams{UserID: usageInt(2)}, []int64{2001}},
		{"Key", export.UsageLogParams{KeyID: usageInt(10)}, []int64{2004}},
		{"FinalProvider", export.UsageLogParams{ProviderID: usageInt(1)}, []int64{2001}},
		{"NotTheRecordedProvider", export.UsageLogParams{ProviderID: usageInt(3)}, []int64{}},
		{"Session", export.UsageLogParams{SessionID: "sess_l4"}, []int64{2004}},
		{"Window", export.UsageLogParams{StartTime: usageAt("2026-01-29T08:30:00Z"), EndTime: usageAt("2026-01-29T09:30:00Z")}, []int64{2002}},
		{"Endpoint", export.UsageLogParams{Endpoint: "/v1/Responses/"}, []int64{2004}},
		{"NoRetriesInTheLedger", export.UsageLogParams{MinRetryCount: 1}, []int64{}},
	}
	for _, c := range cases {
		if got := usageIDs(t, db, c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: ids %v, want %v", c.name, got, c.want)
		}
	}
	want := usageHeaderEN +
		"2026-01-29T09:30:00.000Z,alice,alice laptop 💻,Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-5-20250929,/v1/messages,200,10,20,0,0,0,30,0.5,100,sess_l1,0\n" +
		"2026-01-29T08:30:00.000Z,User #99,sk-g…3456,,gpt-4.1,gpt-4.1,/v1/chat/completions,200,0,0,0,0,0,0,0,,,0\n" +
		"2026-01-29T06:30:00.000Z,🦊 Fox Team 🚀,dup (valid copy),\"Codex Pool, Tier 1\",gpt-5-codex,gpt-5-codex,/v1/responses,200,1,1,0,0,0,2,1,10,sess_l4,0\n"
	if got := usageCSV(t, db, export.UsageLogParams{HeaderLang: "en", Timezone: "UTC"}); got != want {
		t.Errorf("ledger CSV\n got %q\nwant %q", got, want)
	}
	// Soft-deleted requests still mean the log is not empty: no fallback then.
	if _, err := pool.Exec(t.Context(), `INSERT INTO message_request (id, user_id, key, provider_id, created_at, deleted_at)
		VALUES (5000, 2, 'sk-seed-user-0002', 1, now(), now())`); err != nil {
		t.Fatal(err)
	}
	if got := usageIDs(t, db, export.UsageLogParams{}); len(got) != 0 {
		t.Errorf("with only a soft-deleted request: ids %v, want none", got)
	}
}

// The machine formats' ids: the request's own user and provider ids, and the keys row that
// names the key (its user's duplicate first, else the lowest id; none when the key is gone).
func TestUsageLogIDs(t *testing.T) {
	t.Parallel()
	pool, db := usageSetup(t)
	type ids struct {
		user     int64
		key      *int64
		provider int64
	}
	want := func(table, id, provider string) map[int64]ids {
		rows, err := pool.Query(t.Context(), `SELECT t.`+id+`, t.user_id,
			(SELECT k.id FROM keys k WHERE k.key = t.key ORDER BY k.user_id = t.user_id DESC, k.id LIMIT 1),
			t.`+provider+` FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]ids{}
		for rows.Next() {
			var (
				rid int64
				v   ids
			)
			if err := rows.Scan(&rid, &v.user, &v.key, &v.provider); err != nil {
				t.Fatal(err)
			}
			out[rid] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(mode string, want map[int64]ids) {
		n := 0
		// The row and its pointers are reused: compare each as it comes.
		err := db.UsageLogs(t.Context(), export.UsageLogParams{}, func(r *export.UsageRow) error {
			n++
			w, ok := want[r.ID]
			got := ids{r.UserID, r.KeyID, r.ProviderID}
			if !ok || got.user != w.user || got.provider != w.provider || (got.key == nil) != (w.key == nil) ||
				got.key != nil && *got.key != *w.key {
				t.Errorf("%s: request %d has user %d, key %v, provider %d; want user %d, key %v, provider %d",
					mode, r.ID, got.user, derefID(got.key), got.provider, w.user, derefID(w.key), w.provider)
			}
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("%s: %d rows, %v", mode, n, err)
		}
	}
	check("requests", want("message_request", "id", "provider_id"))
	if _, err := pool.Exec(t.Context(), "DELETE FROM message_request"); err != nil {
		t.Fatal(err)
	}
	ledger := want("usage_ledger", "request_id", "final_provider_id")
	if w := ledger[2002]; w.key != nil || w.user != 99 || w.provider != 0 {
		t.Fatalf("fixture: request 2002 should have lost its key row and user: %+v", w)
	}
	check("ledger", ledger)
}

func derefID(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestUsageLogStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	_, db := usageSetup(t)
	stop := errors.New("stop")
	n := 0
	err := db.UsageLogs(t.Context(), export.UsageLogParams{}, func(*export.UsageRow) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("err %v after %d rows, want the callback's own error after 2", err, n)
	}
}

func TestUsageLogEstimate(t *testing.T) {
	t.Parallel()
	pool, db := usageSetup(t)
	n, err := db.EstimateUsageLogs(t.Context(), export.UsageLogParams{})
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || n > 100 {
		t.Errorf("estimate %d for the fixture's 11 rows", n)
	}
	if n, err := db.EstimateUsageLogs(t.Context(), export.UsageLogParams{MinRetryCount: 1, UserID: usageInt(2)}); err != nil || n < 0 {
		t.Errorf("filtered estimate %d, %v", n, err)
	}
	if _, err := pool.Exec(t.Context(), "DELETE FROM message_request"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.EstimateUsageLogs(t.Context(), export.UsageLogParams{MinRetryCount: 1}); err != nil || n != 0 {
		t.Errorf("ledger estimate with min_retry_count: %d, %v; want 0", n, err)
	}
	if n, err := db.EstimateUsageLogs(t.Context(), export.UsageLogParams{}); err != nil || n < 1 {
		t.Errorf("ledger estimate: %d, %v", n, err)
	}
}

// Over seeded traffic: every request that CCH's joins keep is exported once (the key string in
// two keys rows does not double its requests), newest first.
func TestUsageLogSeededTraffic(t *testing.T) {
	t.Parallel()
	pool, db := setup(t)
	rows := usageRows(t, db, export.UsageLogParams{Endpoint: ""})
	var want int64
	if err := pool.QueryRow(t.Context(), `
		SELECT count(*) FROM message_request mr JOIN users u ON u.id = mr.user_id
		WHERE mr.deleted_at IS NULL AND EXISTS (SELECT 1 FROM keys k WHERE k.key = mr.key)
			AND (mr.endpoint IS NULL OR mr.endpoint NOT IN ('/v1/messages/count_tokens', '/v1/responses/compact'))`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if int64(len(rows)) != want || want == 0 {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	ids := map[int64]bool{}
	for i, r := range rows {
		if ids[r.ID] {
			t.Fatalf("request %d exported twice", r.ID)
		}
		ids[r.ID] = true
		if i > 0 {
			p := rows[i-1]
			if r.CreatedAt.After(p.CreatedAt) || r.CreatedAt.Equal(p.CreatedAt) && r.ID > p.ID {
				t.Fatalf("row %d (%d at %s) after %d at %s: not newest first", i, r.ID, r.CreatedAt, p.ID, p.CreatedAt)
			}
		}
		if strings.HasPrefix(r.Key, "dup (") {
			if r.Key != "dup (valid copy)" {
				t.Errorf("request %d of the duplicated key named %q, want its own user's row", r.ID, r.Key)
			}
		}
		if r.TotalTokens < r.InputTokens+r.OutputTokens+r.CacheRead {
			t.Errorf("request %d: total %d below its parts", r.ID, r.TotalTokens)
		}
		if _, err := strconv.ParseFloat(r.CostUSD, 64); err != nil {
			t.Errorf("request %d: cost %q", r.ID, r.CostUSD)
		}
	}
	est, err := db.EstimateUsageLogs(t.Context(), export.UsageLogParams{})
	if err != nil || est <= 0 {
		t.Errorf("estimate %d, %v", est, err)
	}
}
