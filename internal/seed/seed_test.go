package seed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var testNow = time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)

func connect(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// seeded returns a pool on a fresh database seeded with opts, and the report.
func seeded(t *testing.T, opts seed.Options) (*pgxpool.Pool, seed.Report) {
	t.Helper()
	pool := connect(t, testenv.Postgres(t))
	rep, err := seed.Run(t.Context(), pool, opts)
	if err != nil {
		t.Fatalf("seed.Run: %v", err)
	}
	return pool, rep
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestSchema(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, seed.Options{Rows: 100, Seed: 1, Now: testNow})

	t.Run("ColumnCounts", func(t *testing.T) {
		want := map[string]int{
			"users": 26, "keys": 22, "providers": 66, "provider_vendors": 7, "message_request": 55,
			"usage_ledger": 40, "provider_endpoints": 16, "provider_endpoint_probe_logs": 9, "model_prices": 6,
		}
		for table, n := range want {
			got := scalar[int](t, pool, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1", table)
			if got != n {
				t.Errorf("%s has %d columns, want %d", table, got, n)
			}
		}
	})

	t.Run("ColumnTypes", func(t *testing.T) {
		i := func(v int32) *int32 { return &v }
		s := func(v string) *string { return &v }
		want := []col{
			{"message_request", "id", "integer", "int4", "NO", nil, i(32), i(0), s("nextval('message_request_id_seq'::regclass)")},
			{"message_request", "key", "character varying", "varchar", "NO", nil, nil, nil, nil},
			{"message_request", "model", "character varying", "varchar", "YES", i(128), nil, nil, nil},
			{"message_request", "cost_usd", "numeric", "numeric", "YES", nil, i(21), i(15), s("'0'::numeric")},
			{"message_request", "input_tokens", "bigint", "int8", "YES", nil, i(64), i(0), nil},
			{"message_request", "provider_chain", "jsonb", "jsonb", "YES", nil, nil, nil, nil},
			{"message_request", "is_replay", "boolean", "bool", "NO", nil, nil, nil, s("false")},
			{"message_request", "request_sequence", "integer", "int4", "YES", nil, i(32), i(0), s("1")},
			{"message_request", "created_at", "timestamp with time zone", "timestamptz", "YES", nil, nil, nil, s("now()")},
			{"message_request", "client_ip", "character varying", "varchar", "YES", i(45), nil, nil, nil},
			{"usage_ledger", "created_at", "timestamp with time zone", "timestamptz", "NO", nil, nil, nil, nil},
			{"usage_ledger", "is_success", "boolean", "bool", "NO", nil, nil, nil, s("false")},
			{"usage_ledger", "cost_multiplier", "numeric", "numeric", "YES", nil, i(10), i(4), nil},
			{"users", "limit_5h_reset_mode", "USER-DEFINED", "daily_reset_mode", "NO", nil, nil, nil, s("'rolling'::daily_reset_mode")},
			{"users", "role", "character varying", "varchar", "YES", nil, nil, nil, s("'user'::character varying")},
			{"keys", "is_enabled", "boolean", "bool", "YES", nil, nil, nil, s("true")},
			{"provider_endpoint_probe_logs", "source", "character varying", "varchar", "NO", i(20), nil, nil, s("'scheduled'::character varying")},
			{"provider_endpoint_probe_logs", "latency_ms", "integer", "int4", "YES", nil, i(32), i(0), nil},
			{"system_settings", "timezone", "character varying", "varchar", "YES", i(64), nil, nil, nil},
			{"system_settings", "enable_high_concurrency_mode", "boolean", "bool", "NO", nil, nil, nil, s("false")},
		}
		for _, w := range want {
			var got col
			err := pool.QueryRow(t.Context(), `
				SELECT table_name, column_name, data_type, udt_name, is_nullable, character_maximum_length,
					numeric_precision, numeric_scale, column_default
				FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`,
				w.table, w.column).Scan(&got.table, &got.column, &got.dataType, &got.udt, &got.nullable, &got.length, &got.precision, &got.scale, &got.defaultValue)
			if err != nil {
				t.Errorf("%s.%s: %v", w.table, w.column, err)
				continue
			}
			if show(got) != show(w) {
				t.Errorf("%s.%s:\n got %s\nwant %s", w.table, w.column, show(got), show(w))
			}
		}
	})

	t.Run("MessageRequestIndexes", func(t *testing.T) {
		want := []string{
			"idx_message_request_blocked_by", "idx_message_request_client_ip_created_at", "idx_message_request_created_at",
			"idx_message_request_created_at_id_active", "idx_message_request_cursor", "idx_message_request_deleted_at",
			"idx_message_request_endpoint", "idx_message_request_key", "idx_message_request_key_cost_active",
			"idx_message_request_key_created_at_id", "idx_message_request_key_endpoint_active", "idx_message_request_key_last_active",
			"idx_message_request_key_model_active", "idx_message_request_model_active", "idx_message_request_provider_created_at_active",
			"idx_message_request_provider_created_at_finalized_active", "idx_message_request_provider_id",
			"idx_message_request_proxy_status_active", "idx_message_request_proxy_status_latest", "idx_message_request_session_id",
			"idx_message_request_session_id_prefix", "idx_message_request_session_identity_created_at", "idx_message_request_session_seq",
			"idx_message_request_session_user_info", "idx_message_request_status_code_active", "idx_message_request_user_created_at_cost_stats",
			"idx_message_request_user_date_cost", "idx_message_request_user_id", "idx_message_request_user_query", "message_request_pkey",
		}
		if got := indexNames(t, pool, "message_request"); !slices.Equal(got, want) {
			t.Errorf("message_request indexes:\n got %q\nwant %q", got, want)
		}
		if got := len(indexNames(t, pool, "usage_ledger")); got != 16 {
			t.Errorf("usage_ledger has %d indexes, want 15 and the primary key", got)
		}
		defs := map[string]string{
			"idx_message_request_session_identity_created_at":      "CREATE INDEX idx_message_request_session_identity_created_at ON public.message_request USING btree (COALESCE(session_identity, session_id), created_at DESC NULLS LAST, id DESC NULLS LAST) WHERE (deleted_at IS NULL)",
			"idx_message_request_key_cost_active":                  "CREATE INDEX idx_message_request_key_cost_active ON public.message_request USING btree (key, cost_usd) WHERE ((deleted_at IS NULL) AND ((blocked_by IS NULL) OR ((blocked_by)::text <> 'warmup'::text)))",
			"idx_message_request_cursor":                           "CREATE INDEX idx_message_request_cursor ON public.message_request USING btree (created_at DESC, id DESC)",
			"idx_usage_ledger_request_id":                          "CREATE UNIQUE INDEX idx_usage_ledger_request_id ON public.usage_ledger USING btree (request_id)",
			"idx_provider_endpoint_probe_logs_endpoint_created_at": "CREATE INDEX idx_provider_endpoint_probe_logs_endpoint_created_at ON public.provider_endpoint_probe_logs USING btree (endpoint_id, created_at DESC NULLS LAST)",
		}
		for name, want := range defs {
			if got := scalar[string](t, pool, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1", name); got != want {
				t.Errorf("%s:\n got %s\nwant %s", name, got, want)
			}
		}
	})

	t.Run("ForeignKeys", func(t *testing.T) {
		rows, err := pool.Query(t.Context(), `
			SELECT conrelid::regclass::text || ' -> ' || confrelid::regclass::text || ' ' || confdeltype::text
			FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		// r = restrict, c = cascade; none on message_request or usage_ledger.
		want := []string{"provider_endpoint_probe_logs -> provider_endpoints c", "provider_endpoints -> provider_vendors c", "providers -> provider_vendors r"}
		if !slices.Equal(got, want) {
			t.Errorf("foreign keys:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("EnumAndIdempotentDDL", func(t *testing.T) {
		if got := scalar[string](t, pool, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'daily_reset_mode'::regtype"); got != "fixed,rolling" {
			t.Errorf("daily_reset_mode = %q", got)
		}
		tables, indexes := seed.Schema()
		if _, err := pool.Exec(t.Context(), tables+indexes); err != nil {
			t.Errorf("schema is not idempotent: %v", err)
		}
	})
}

type col struct {
	table, column            string
	dataType, udt            string
	nullable                 string
	length, precision, scale *int32
	defaultValue             *string
}

func show(c col) string {
	n := func(p *int32) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	d := "NULL"
	if c.defaultValue != nil {
		d = *c.defaultValue
	}
	return fmt.Sprintf("%s %s null=%s len=%s prec=%s scale=%s default=%s", c.dataType, c.udt, c.nullable, n(c.length), n(c.precision), n(c.scale), d)
}

func indexNames(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY indexname", table)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestRunContent(t *testing.T) {
	t.Parallel()
	const rows = 6000
	pool, rep := seeded(t, seed.Options{Rows: rows, Seed: 42, Now: testNow})

	if rep.Requests != rows {
		t.Errorf("Report.Requests = %d, want %d", rep.Requests, rows)
	}
	counts := map[string]int64{
		"SELECT count(*) FROM users":                        rep.Users,
		"SELECT count(*) FROM keys":                         rep.Keys,
		"SELECT count(*) FROM providers":                    rep.Providers,
		"SELECT count(*) FROM message_request":              rows,
		"SELECT count(*) FROM usage_ledger":                 rep.LedgerRows,
		"SELECT count(*) FROM provider_endpoints":           rep.Endpoints,
		"SELECT count(*) FROM provider_endpoint_probe_logs": rep.ProbeLogs,
		"SELECT count(*) FROM system_settings":              1,
		// One ledger row per billed request.
		"SELECT count(*) FROM message_request WHERE endpoint NOT IN ('/v1/messages/count_tokens', '/v1/responses/compact') OR endpoint IS NULL": rep.LedgerRows,
	}
	for q, want := range counts {
		if got := scalar[int64](t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	if rep.Users < 10 || rep.Keys < 20 || rep.Providers < 6 || rep.Endpoints < 5 || rep.ProbeLogs < 5*200 {
		t.Errorf("report too small: %+v", rep)
	}

	// Each of these must hold for at least one row (the data set has every case a consumer
	// must handle); the number in the name is a lower bound.
	present := []struct{ name, where string }{
		{"admin user", "SELECT count(*) FROM users WHERE role = 'admin'"},
		{"chinese name", "SELECT count(*) FROM users WHERE name ~ '[\u4e00-\u9fff]'"},
		{"emoji name", "SELECT count(*) FROM users WHERE name ~ '[\U0001F300-\U0001FAFF]'"},
		{"formula names", "SELECT count(DISTINCT left(name, 1)) - 3 FROM users WHERE left(name, 1) IN ('=', '+', '-', '@')"},
		{"comma quote newline", "SELECT count(*) FROM users WHERE name LIKE '%,%' AND name LIKE '%\"%' AND name LIKE E'%\\n%'"},
		{"formula provider", "SELECT count(*) FROM providers WHERE name LIKE '=%'"},
		{"deleted provider", "SELECT count(*) FROM providers WHERE deleted_at IS NOT NULL"},
		{"warmup", "SELECT count(*) FROM message_request WHERE blocked_by = 'warmup' AND provider_id = 0 AND cost_usd IS NULL"},
		{"sensitive word", "SELECT count(*) FROM message_request WHERE blocked_by = 'sensitive_word' AND provider_id = 0"},
		{"null tokens", "SELECT count(*) FROM message_request WHERE input_tokens IS NULL AND status_code = 200"},
		{"null cache tokens", "SELECT count(*) FROM message_request WHERE cache_read_input_tokens IS NULL AND input_tokens IS NOT NULL"},
		{"over 15 significant digits", "SELECT count(*) FROM message_request WHERE length(trim(trailing '0' from ltrim(replace(cost_usd::text, '.', ''), '0'))) > 15"},
		{"trailing zeros", "SELECT count(*) FROM message_request WHERE cost_usd > 0 AND cost_usd::text LIKE '%000000000'"},
		{"retry chain", "SELECT count(*) FROM message_request WHERE provider_chain -> 0 ->> 'reason' = 'retry_failed' AND provider_chain -> -1 ->> 'reason' = 'retry_success' AND (provider_chain -> -1 ->> 'statusCode')::int = 200"},
		{"hedge chain", "SELECT count(*) FROM message_request WHERE provider_chain @> '[{\"reason\":\"hedge_triggered\"}]' AND provider_chain @> '[{\"reason\":\"hedge_winner\"}]'"},
		{"single attempt", "SELECT count(*) FROM message_request WHERE jsonb_array_length(provider_chain) = 1 AND provider_chain -> 0 ->> 'reason' = 'request_success'"},
		{"null chain", "SELECT count(*) FROM message_request WHERE provider_chain IS NULL AND status_code = 200 AND provider_id > 0"},
		{"messages", "SELECT count(*) FROM message_request WHERE endpoint = '/v1/messages'"},
		{"chat completions", "SELECT count(*) FROM message_request WHERE endpoint = '/v1/chat/completions'"},
		{"count tokens", "SELECT count(*) FROM message_request WHERE endpoint = '/v1/messages/count_tokens'"},
		{"compact", "SELECT count(*) FROM message_request WHERE endpoint = '/v1/responses/compact'"},
		{"soft deleted", "SELECT count(*) FROM message_request WHERE deleted_at IS NOT NULL"},
		{"sessions", "SELECT count(DISTINCT session_id) - 20 FROM message_request"},
		{"prefix affinity", "SELECT count(*) FROM message_request WHERE session_identity_kind = 'prefix_affinity' AND session_identity LIKE 'pfx:%'"},
		{"status 400", "SELECT count(*) FROM message_request WHERE status_code = 400"},
		{"status 429", "SELECT count(*) FROM message_request WHERE status_code = 429"},
		{"status 500", "SELECT count(*) FROM message_request WHERE status_code = 500"},
		{"status null", "SELECT count(*) FROM message_request WHERE status_code IS NULL"},
		{"unknown key", "SELECT count(*) FROM message_request m WHERE NOT EXISTS (SELECT 1 FROM keys k WHERE k.key = m.key)"},
		{"created_at ties", "SELECT count(*) FROM (SELECT created_at FROM message_request GROUP BY 1 HAVING count(*) > 1) s"},
		{"ledger warmup", "SELECT count(*) FROM usage_ledger WHERE blocked_by = 'warmup' AND cost_usd IS NULL"},
		{"ledger final provider differs", "SELECT count(*) FROM usage_ledger WHERE final_provider_id <> provider_id"},
		{"probe 1125", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE latency_ms = 1125"},
		{"probe 1005", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE latency_ms = 1005"},
		{"probe 999", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE latency_ms = 999"},
		{"probe null latency", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE latency_ms IS NULL"},
		{"probe null status", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE status_code IS NULL"},
		{"probe timeout", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE NOT ok AND error_type = 'timeout'"},
		{"probe network", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE NOT ok AND error_type = 'network_error' AND error_message <> ''"},
		{"probe 5xx", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE NOT ok AND error_type = 'http_5xx' AND status_code >= 500"},
		{"last probe recorded", "SELECT count(*) FROM provider_endpoints WHERE last_probed_at IS NOT NULL"},
	}
	for _, p := range present {
		if n := scalar[int64](t, pool, p.where); n < 1 {
			t.Errorf("%s: %d (want at least 1): %s", p.name, n, p.where)
		}
	}

	// Invariants that must hold for every row.
	never := []struct{ name, where string }{
		{"ledger for non-billing endpoint", "SELECT count(*) FROM usage_ledger WHERE endpoint IN ('/v1/messages/count_tokens', '/v1/responses/compact')"},
		{"ledger final provider is not the last chain id", "SELECT count(*) FROM usage_ledger l JOIN message_request m ON m.id = l.request_id WHERE l.final_provider_id <> COALESCE((m.provider_chain -> -1 ->> 'id')::int, m.provider_id)"},
		{"ledger differs from its request", "SELECT count(*) FROM usage_ledger l JOIN message_request m ON m.id = l.request_id WHERE (l.user_id, l.key, l.provider_id, l.created_at, l.cost_usd, l.endpoint, l.status_code) IS DISTINCT FROM (m.user_id, m.key, m.provider_id, m.created_at, m.cost_usd, m.endpoint, m.status_code)"},
		{"ledger success disagrees with error_message", "SELECT count(*) FROM usage_ledger l JOIN message_request m ON m.id = l.request_id WHERE l.is_success <> (m.error_message IS NULL OR m.error_message = '')"},
		{"request outside the 30 days", "SELECT count(*) FROM message_request WHERE created_at > $1::timestamptz OR created_at < $1::timestamptz - interval '30 days'"},
		{"probe outside the day", "SELECT count(*) FROM provider_endpoint_probe_logs WHERE created_at > $1::timestamptz OR created_at < $1::timestamptz - interval '1 day 1 minute'"},
		{"request user does not match its key", "SELECT count(*) FROM message_request m JOIN keys k ON k.key = m.key WHERE k.user_id <> m.user_id AND m.key <> '" + seed.DuplicateKey + "'"},
		{"warmup with a provider or a cost", "SELECT count(*) FROM message_request WHERE blocked_by = 'warmup' AND (provider_id <> 0 OR cost_usd IS NOT NULL)"},
	}
	for _, n := range never {
		var args []any
		if strings.Contains(n.where, "$1") {
			args = append(args, testNow)
		}
		if got := scalar[int64](t, pool, n.where, args...); got != 0 {
			t.Errorf("%s: %d rows: %s", n.name, got, n.where)
		}
	}

	if got := scalar[time.Time](t, pool, "SELECT max(created_at) FROM message_request"); !got.Equal(testNow) {
		t.Errorf("newest request at %v, want Now %v", got, testNow)
	}
	if got := scalar[string](t, pool, "SELECT timezone FROM system_settings"); got != "Asia/Shanghai" {
		t.Errorf("system_settings.timezone = %q", got)
	}
	// Sequences continue after the seeded ids.
	for _, table := range []string{"users", "keys", "message_request", "usage_ledger", "provider_endpoint_probe_logs"} {
		next := scalar[int64](t, pool, "SELECT nextval(pg_get_serial_sequence($1, 'id'))", table)
		if max := scalar[int64](t, pool, "SELECT max(id) FROM "+table); next != max+1 {
			t.Errorf("%s: next id %d, want %d", table, next, max+1)
		}
	}
}

// checksums returns an md5 of every seeded table's rows in id order.
func checksums(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range []string{"users", "keys", "provider_vendors", "providers", "message_request", "usage_ledger", "provider_endpoints", "provider_endpoint_probe_logs", "system_settings", "model_prices"} {
		out[table] = scalar[string](t, pool, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM "+table+" t")
	}
	return out
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	opts := seed.Options{Rows: 3000, Seed: 7, Now: testNow}
	a, _ := seeded(t, opts)
	b, _ := seeded(t, opts)
	opts.Seed = 8
	c, _ := seeded(t, opts)
	sa, sb, sc := checksums(t, a), checksums(t, b), checksums(t, c)
	for table, sum := range sa {
		if sb[table] != sum {
			t.Errorf("%s differs between two runs with the same options", table)
		}
	}
	for _, table := range []string{"message_request", "usage_ledger", "provider_endpoint_probe_logs"} {
		if sc[table] == sa[table] {
			t.Errorf("%s is the same for seeds 7 and 8", table)
		}
	}
}

func TestRefusesNonEmptyDatabase(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, seed.Options{Rows: 50, Seed: 1, Now: testNow})
	before := checksums(t, pool)
	_, err := seed.Run(t.Context(), pool, seed.Options{Rows: 50, Seed: 2, Now: testNow})
	if !errors.Is(err, seed.ErrNotEmpty) {
		t.Fatalf("second Run: %v, want ErrNotEmpty", err)
	}
	if after := checksums(t, pool); !mapsEqual(before, after) {
		t.Error("a refused Run changed the data")
	}

	// A hub whose users table has rows but no message_request at all is refused too.
	other := connect(t, testenv.Postgres(t))
	if _, err := other.Exec(t.Context(), "CREATE TABLE users (id serial PRIMARY KEY, name varchar NOT NULL); INSERT INTO users (name) VALUES ('real')"); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Run(t.Context(), other, seed.Options{Rows: 10, Seed: 1, Now: testNow}); !errors.Is(err, seed.ErrNotEmpty) {
		t.Fatalf("Run on a hub with users: %v, want ErrNotEmpty", err)
	}
	if n := scalar[int](t, other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); n != 1 {
		t.Errorf("refused Run left %d tables, want only the hub's own users", n)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestHubTrigger seeds a schema that has CCH's ledger trigger: the trigger writes the ledger
// during the request COPY, and the seed must not write it a second time.
func TestHubTrigger(t *testing.T) {
	t.Parallel()
	pool := connect(t, testenv.Postgres(t))
	tables, _ := seed.Schema()
	if _, err := pool.Exec(t.Context(), tables+`
		CREATE FUNCTION fn_upsert_usage_ledger() RETURNS trigger AS $$
		BEGIN
			IF NEW.endpoint IN ('/v1/messages/count_tokens', '/v1/responses/compact') THEN
				RETURN NEW;
			END IF;
			INSERT INTO usage_ledger (request_id, user_id, key, provider_id, final_provider_id, created_at)
			VALUES (NEW.id, NEW.user_id, NEW.key, NEW.provider_id, NEW.provider_id, NEW.created_at);
			RETURN NEW;
		END $$ LANGUAGE plpgsql;
		CREATE TRIGGER trg_upsert_usage_ledger AFTER INSERT ON message_request FOR EACH ROW EXECUTE FUNCTION fn_upsert_usage_ledger();`); err != nil {
		t.Fatal(err)
	}
	rep, err := seed.Run(t.Context(), pool, seed.Options{Rows: 500, Seed: 1, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	want := scalar[int64](t, pool, "SELECT count(*) FROM message_request WHERE endpoint NOT IN ('/v1/messages/count_tokens', '/v1/responses/compact')")
	if rep.LedgerRows != want || scalar[int64](t, pool, "SELECT count(*) FROM usage_ledger") != want {
		t.Errorf("ledger: report %d, want %d rows written by the trigger", rep.LedgerRows, want)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]seed.Options{
		"negative rows": {Rows: -1, Now: testNow},
		"no now":        {Rows: 1},
	} {
		if _, err := seed.Run(t.Context(), nil, opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestKnownKeys checks the documented keys against CCH's validity rules (hub-facts §6), with the
// real clock: expiries are relative to Now, which is in the past here.
func TestKnownKeys(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, seed.Options{Rows: 10, Seed: 3, Now: time.Now().Truncate(time.Minute)})
	const valid = `
		SELECT u.id, u.role = 'admin'
		FROM keys k JOIN users u ON u.id = k.user_id
		WHERE k.key = $1 AND k.deleted_at IS NULL AND u.deleted_at IS NULL
			AND k.is_enabled AND (k.expires_at IS NULL OR k.expires_at > now())
			AND u.is_enabled AND (u.expires_at IS NULL OR u.expires_at > now())
		ORDER BY k.id LIMIT 1`
	type want struct {
		valid  bool
		userID int
		admin  bool
	}
	for key, w := range map[string]want{
		seed.AdminKey:        {true, seed.AdminUserID, true},
		seed.UserKey:         {true, seed.UserID, false},
		seed.DuplicateKey:    {true, seed.DuplicateKeyUserID, false},
		seed.FutureKey:       {true, 14, false},
		seed.DisabledKey:     {},
		seed.ExpiredKey:      {},
		seed.DeletedKey:      {},
		seed.DisabledUserKey: {},
		seed.ExpiredUserKey:  {},
		seed.DeletedUserKey:  {},
		seed.UnknownKey:      {},
	} {
		var uid int
		var admin bool
		err := pool.QueryRow(t.Context(), valid, key).Scan(&uid, &admin)
		switch {
		case !w.valid && err == nil:
			t.Errorf("%s is valid (user %d), want invalid", key, uid)
		case w.valid && err != nil:
			t.Errorf("%s: %v, want valid", key, err)
		case w.valid && (uid != w.userID || admin != w.admin):
			t.Errorf("%s: user %d admin %v, want user %d admin %v", key, uid, admin, w.userID, w.admin)
		}
		if w.valid || key == seed.UnknownKey {
			continue
		}
		if n := scalar[int](t, pool, "SELECT count(*) FROM keys WHERE key = $1", key); n == 0 {
			t.Errorf("%s has no keys row; it should exist and be invalid", key)
		}
	}
	if n := scalar[int](t, pool, "SELECT count(*) FROM keys WHERE key = $1", seed.UnknownKey); n != 0 {
		t.Errorf("UnknownKey has %d keys rows", n)
	}
}

// BenchmarkSeed1M measures a full seed of a million requests:
//
//	go test ./internal/seed -run '^$' -bench Seed1M -benchtime 1x
func BenchmarkSeed1M(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		pool := connect(b, testenv.Postgres(b))
		b.StartTimer()
		var log *slog.Logger
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		rep, err := seed.Run(context.Background(), pool, seed.Options{Rows: 1_000_000, Seed: 1, Now: testNow, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Requests)/rep.Duration.Seconds(), "rows/s")
		b.ReportMetric(rep.Duration.Seconds(), "s/seed")
	}
}
