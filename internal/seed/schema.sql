-- CCH-shaped hub schema (hub-facts §1.4, drizzle snapshot 0118), for `hubexport seed` only.
-- Every statement is idempotent so seeding a database that already has CCH's (empty) schema
-- leaves it alone. The service itself never runs this: it must not run DDL in public.
--
-- The file has two parts. Tables come first; indexes follow the marker line below, so that the
-- seeder can bulk-load the big tables before it builds their indexes (much faster than
-- maintaining 40-odd indexes row by row).

DO $$
BEGIN
	IF NOT EXISTS (
		SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE t.typname = 'daily_reset_mode' AND n.nspname = 'public'
	) THEN
		CREATE TYPE public.daily_reset_mode AS ENUM ('fixed', 'rolling');
	END IF;
END
$$;

CREATE TABLE IF NOT EXISTS users (
	id serial PRIMARY KEY NOT NULL,
	name varchar NOT NULL,
	description text,
	role varchar DEFAULT 'user',
	rpm_limit integer,
	daily_limit_usd numeric(10, 2),
	provider_group varchar(200) DEFAULT 'default',
	tags jsonb DEFAULT '[]'::jsonb,
	limit_5h_usd numeric(10, 2),
	limit_5h_reset_mode daily_reset_mode DEFAULT 'rolling' NOT NULL,
	limit_weekly_usd numeric(10, 2),
	limit_monthly_usd numeric(10, 2),
	limit_total_usd numeric(10, 2),
	cost_reset_at timestamp with time zone,
	limit_5h_cost_reset_at timestamp with time zone,
	limit_concurrent_sessions integer,
	daily_reset_mode daily_reset_mode DEFAULT 'fixed' NOT NULL,
	daily_reset_time varchar(5) DEFAULT '00:00' NOT NULL,
	is_enabled boolean DEFAULT true NOT NULL,
	expires_at timestamp with time zone,
	allowed_clients jsonb DEFAULT '[]'::jsonb,
	allowed_models jsonb DEFAULT '[]'::jsonb,
	blocked_clients jsonb DEFAULT '[]'::jsonb NOT NULL,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now(),
	deleted_at timestamp with time zone
);

CREATE TABLE IF NOT EXISTS keys (
	id serial PRIMARY KEY NOT NULL,
	user_id integer NOT NULL,
	key varchar NOT NULL,
	name varchar NOT NULL,
	is_enabled boolean DEFAULT true,
	expires_at timestamp with time zone,
	can_login_web_ui boolean DEFAULT false,
	limit_5h_usd numeric(10, 2),
	limit_5h_reset_mode daily_reset_mode DEFAULT 'rolling' NOT NULL,
	limit_daily_usd numeric(10, 2),
	daily_reset_mode daily_reset_mode DEFAULT 'fixed' NOT NULL,
	daily_reset_time varchar(5) DEFAULT '00:00' NOT NULL,
	limit_weekly_usd numeric(10, 2),
	limit_monthly_usd numeric(10, 2),
	limit_total_usd numeric(10, 2),
	cost_reset_at timestamp with time zone,
	limit_concurrent_sessions integer DEFAULT 0,
	provider_group varchar(200) DEFAULT 'default',
	cache_ttl_preference varchar(10),
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now(),
	deleted_at timestamp with time zone
);

CREATE TABLE IF NOT EXISTS provider_vendors (
	id serial PRIMARY KEY NOT NULL,
	website_domain varchar(255) NOT NULL,
	display_name varchar(200),
	website_url text,
	favicon_url text,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now()
);

CREATE TABLE IF NOT EXISTS providers (
	id serial PRIMARY KEY NOT NULL,
	name varchar NOT NULL,
	description text,
	url varchar NOT NULL,
	key varchar NOT NULL,
	provider_vendor_id integer NOT NULL REFERENCES provider_vendors(id) ON DELETE RESTRICT,
	is_enabled boolean DEFAULT true NOT NULL,
	weight integer DEFAULT 1 NOT NULL,
	priority integer DEFAULT 0 NOT NULL,
	group_priorities jsonb DEFAULT 'null'::jsonb,
	cost_multiplier numeric(10, 4) DEFAULT '1.0',
	group_tag varchar(255),
	provider_type varchar(20) DEFAULT 'claude' NOT NULL,
	preserve_client_ip boolean DEFAULT false NOT NULL,
	disable_session_reuse boolean DEFAULT false NOT NULL,
	model_redirects jsonb,
	allowed_models jsonb DEFAULT 'null'::jsonb,
	allowed_clients jsonb DEFAULT '[]'::jsonb NOT NULL,
	blocked_clients jsonb DEFAULT '[]'::jsonb NOT NULL,
	active_time_start varchar(5),
	active_time_end varchar(5),
	codex_instructions_strategy varchar(20) DEFAULT 'auto',
	mcp_passthrough_type varchar(20) DEFAULT 'none' NOT NULL,
	mcp_passthrough_url varchar(512),
	limit_5h_usd numeric(10, 2),
	limit_5h_reset_mode daily_reset_mode DEFAULT 'rolling' NOT NULL,
	limit_daily_usd numeric(10, 2),
	daily_reset_mode daily_reset_mode DEFAULT 'fixed' NOT NULL,
	daily_reset_time varchar(5) DEFAULT '00:00' NOT NULL,
	limit_weekly_usd numeric(10, 2),
	limit_monthly_usd numeric(10, 2),
	limit_total_usd numeric(10, 2),
	total_cost_reset_at timestamp with time zone,
	limit_concurrent_sessions integer DEFAULT 0,
	max_retry_attempts integer,
	circuit_breaker_failure_threshold integer DEFAULT 5,
	circuit_breaker_open_duration integer DEFAULT 1800000,
	circuit_breaker_half_open_success_threshold integer DEFAULT 2,
	proxy_url varchar(512),
	proxy_fallback_to_direct boolean DEFAULT false,
	custom_headers jsonb,
	first_byte_timeout_streaming_ms integer DEFAULT 0 NOT NULL,
	streaming_idle_timeout_ms integer DEFAULT 0 NOT NULL,
	request_timeout_non_streaming_ms integer DEFAULT 0 NOT NULL,
	website_url text,
	favicon_url text,
	cache_ttl_preference varchar(10),
	swap_cache_ttl_billing boolean DEFAULT false NOT NULL,
	context_1m_preference varchar(20),
	codex_reasoning_effort_preference varchar(20),
	codex_reasoning_summary_preference varchar(20),
	codex_text_verbosity_preference varchar(10),
	codex_parallel_tool_calls_preference varchar(10),
	codex_image_generation_preference varchar(10),
	codex_service_tier_preference varchar(20),
	anthropic_max_tokens_preference varchar(20),
	anthropic_thinking_budget_preference varchar(20),
	anthropic_adaptive_thinking jsonb DEFAULT 'null'::jsonb,
	gemini_google_search_preference varchar(20),
	tpm integer DEFAULT 0,
	rpm integer DEFAULT 0,
	rpd integer DEFAULT 0,
	cc integer DEFAULT 0,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now(),
	deleted_at timestamp with time zone
);

-- No foreign keys on message_request or usage_ledger: CCH has none (hub-facts §1.3).
CREATE TABLE IF NOT EXISTS message_request (
	id serial PRIMARY KEY NOT NULL,
	provider_id integer NOT NULL,
	user_id integer NOT NULL,
	key varchar NOT NULL,
	model varchar(128),
	duration_ms integer,
	cost_usd numeric(21, 15) DEFAULT '0',
	cost_multiplier numeric(10, 4),
	group_cost_multiplier numeric(10, 4),
	cost_breakdown jsonb,
	session_id varchar(64),
	session_identity varchar(64),
	session_identity_kind varchar(20),
	affinity_scope_tag varchar(16),
	affinity_fingerprint varchar(64),
	affinity_fingerprint_chain jsonb,
	is_replay boolean DEFAULT false NOT NULL,
	replay_source_request_id integer,
	request_sequence integer DEFAULT 1,
	provider_chain jsonb,
	routing_trace jsonb,
	status_code integer,
	api_type varchar(20),
	endpoint varchar(256),
	original_model varchar(128),
	actual_response_model varchar(128),
	input_tokens bigint,
	output_tokens bigint,
	ttfb_ms integer,
	first_byte_ms integer,
	cache_creation_input_tokens bigint,
	cache_read_input_tokens bigint,
	cache_creation_5m_input_tokens bigint,
	cache_creation_1h_input_tokens bigint,
	cache_ttl_applied varchar(10),
	context_1m_applied boolean DEFAULT false,
	swap_cache_ttl_applied boolean DEFAULT false,
	special_settings jsonb,
	hedge_losers jsonb,
	error_message text,
	error_stack text,
	error_cause text,
	blocked_by varchar(50),
	blocked_reason text,
	user_agent varchar(512),
	client_ip varchar(45),
	messages_count integer,
	cache_compatibility_key varchar(64),
	cache_score_eligible boolean,
	cache_score_excluded_reason varchar(32),
	theoretical_cache_tokens bigint,
	cache_ttl_bucket varchar(10),
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now(),
	deleted_at timestamp with time zone
);

CREATE TABLE IF NOT EXISTS usage_ledger (
	id serial PRIMARY KEY NOT NULL,
	request_id integer NOT NULL,
	user_id integer NOT NULL,
	key varchar NOT NULL,
	provider_id integer NOT NULL,
	final_provider_id integer NOT NULL,
	model varchar(128),
	original_model varchar(128),
	actual_response_model varchar(128),
	endpoint varchar(256),
	api_type varchar(20),
	session_id varchar(64),
	session_identity varchar(64),
	session_identity_kind varchar(20),
	affinity_scope_tag varchar(16),
	affinity_fingerprint varchar(64),
	affinity_fingerprint_chain jsonb,
	is_replay boolean DEFAULT false NOT NULL,
	replay_source_request_id integer,
	status_code integer,
	is_success boolean DEFAULT false NOT NULL,
	success_rate_outcome varchar(16),
	blocked_by varchar(50),
	cost_usd numeric(21, 15) DEFAULT '0',
	cost_multiplier numeric(10, 4),
	group_cost_multiplier numeric(10, 4),
	input_tokens bigint,
	output_tokens bigint,
	cache_creation_input_tokens bigint,
	cache_read_input_tokens bigint,
	cache_creation_5m_input_tokens bigint,
	cache_creation_1h_input_tokens bigint,
	cache_ttl_applied varchar(10),
	context_1m_applied boolean DEFAULT false,
	swap_cache_ttl_applied boolean DEFAULT false,
	duration_ms integer,
	ttfb_ms integer,
	first_byte_ms integer,
	client_ip varchar(45),
	created_at timestamp with time zone NOT NULL
);

CREATE TABLE IF NOT EXISTS provider_endpoints (
	id serial PRIMARY KEY NOT NULL,
	vendor_id integer NOT NULL REFERENCES provider_vendors(id) ON DELETE CASCADE,
	provider_type varchar(20) DEFAULT 'claude' NOT NULL,
	url text NOT NULL,
	label varchar(200),
	sort_order integer DEFAULT 0 NOT NULL,
	is_enabled boolean DEFAULT true NOT NULL,
	last_probed_at timestamp with time zone,
	last_probe_ok boolean,
	last_probe_status_code integer,
	last_probe_latency_ms integer,
	last_probe_error_type varchar(64),
	last_probe_error_message text,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now(),
	deleted_at timestamp with time zone
);

CREATE TABLE IF NOT EXISTS provider_endpoint_probe_logs (
	id serial PRIMARY KEY NOT NULL,
	endpoint_id integer NOT NULL REFERENCES provider_endpoints(id) ON DELETE CASCADE,
	source varchar(20) DEFAULT 'scheduled' NOT NULL,
	ok boolean NOT NULL,
	status_code integer,
	latency_ms integer,
	error_type varchar(64),
	error_message text,
	created_at timestamp with time zone DEFAULT now()
);

-- CCH's system_settings has 55 columns; these are the ones exports and sessions read.
CREATE TABLE IF NOT EXISTS system_settings (
	id serial PRIMARY KEY NOT NULL,
	site_title varchar(128) DEFAULT 'Claude Code Hub' NOT NULL,
	timezone varchar(64),
	enable_high_concurrency_mode boolean DEFAULT false NOT NULL,
	enable_auto_cleanup boolean DEFAULT false,
	cleanup_retention_days integer DEFAULT 30,
	cleanup_batch_size integer DEFAULT 10000,
	intercept_anthropic_warmup_requests boolean DEFAULT false NOT NULL,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now()
);

CREATE TABLE IF NOT EXISTS model_prices (
	id serial PRIMARY KEY NOT NULL,
	model_name varchar NOT NULL,
	price_data jsonb NOT NULL,
	source varchar(20) DEFAULT 'cloud' NOT NULL,
	created_at timestamp with time zone DEFAULT now(),
	updated_at timestamp with time zone DEFAULT now()
);

-- @@indexes@@

CREATE INDEX IF NOT EXISTS idx_users_active_role_sort ON users USING btree (deleted_at, role, id) WHERE "users"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_users_created_at ON users USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_users_deleted_at ON users USING btree (deleted_at);
CREATE INDEX IF NOT EXISTS idx_users_enabled_expires_at ON users USING btree (is_enabled, expires_at) WHERE "users"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_users_tags_gin ON users USING gin (tags) WHERE "users"."deleted_at" IS NULL;

CREATE INDEX IF NOT EXISTS idx_keys_created_at ON keys USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_keys_deleted_at ON keys USING btree (deleted_at);
CREATE INDEX IF NOT EXISTS idx_keys_key ON keys USING btree (key);
CREATE INDEX IF NOT EXISTS idx_keys_user_id ON keys USING btree (user_id);

CREATE INDEX IF NOT EXISTS idx_provider_vendors_created_at ON provider_vendors USING btree (created_at);
CREATE UNIQUE INDEX IF NOT EXISTS uniq_provider_vendors_website_domain ON provider_vendors USING btree (website_domain);

CREATE INDEX IF NOT EXISTS idx_providers_created_at ON providers USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_providers_deleted_at ON providers USING btree (deleted_at);
CREATE INDEX IF NOT EXISTS idx_providers_enabled_priority ON providers USING btree (is_enabled, priority, weight) WHERE "providers"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_providers_enabled_vendor_type ON providers USING btree (provider_vendor_id, provider_type) WHERE "providers"."deleted_at" IS NULL AND "providers"."is_enabled" = true AND "providers"."provider_vendor_id" IS NOT NULL AND "providers"."provider_vendor_id" > 0;
CREATE INDEX IF NOT EXISTS idx_providers_group ON providers USING btree (group_tag) WHERE "providers"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_providers_vendor_type ON providers USING btree (provider_vendor_id, provider_type) WHERE "providers"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_providers_vendor_type_url_active ON providers USING btree (provider_vendor_id, provider_type, url) WHERE "providers"."deleted_at" IS NULL;

CREATE INDEX IF NOT EXISTS idx_message_request_blocked_by ON message_request USING btree (blocked_by) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_client_ip_created_at ON message_request USING btree (client_ip, created_at DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."client_ip" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_created_at ON message_request USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_message_request_created_at_id_active ON message_request USING btree (created_at DESC NULLS LAST, id DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_deleted_at ON message_request USING btree (deleted_at);
CREATE INDEX IF NOT EXISTS idx_message_request_endpoint ON message_request USING btree (endpoint) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_key ON message_request USING btree (key);
CREATE INDEX IF NOT EXISTS idx_message_request_key_cost_active ON message_request USING btree (key, cost_usd) WHERE "message_request"."deleted_at" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_key_created_at_id ON message_request USING btree (key, created_at DESC NULLS LAST, id DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_key_endpoint_active ON message_request USING btree (key, endpoint) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."endpoint" IS NOT NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_key_last_active ON message_request USING btree (key, created_at DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_key_model_active ON message_request USING btree (key, model) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."model" IS NOT NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_model_active ON message_request USING btree (model) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."model" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_provider_created_at_active ON message_request USING btree (provider_id, created_at) WHERE "message_request"."deleted_at" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_provider_created_at_finalized_active ON message_request USING btree (provider_id, created_at DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."status_code" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_provider_id ON message_request USING btree (provider_id);
CREATE INDEX IF NOT EXISTS idx_message_request_proxy_status_active ON message_request USING btree ("created_at" DESC NULLS LAST, user_id) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."is_replay" = false AND "message_request"."status_code" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_proxy_status_latest ON message_request USING btree (user_id, "updated_at" DESC NULLS LAST, id DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."is_replay" = false AND "message_request"."status_code" IS NOT NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_session_id ON message_request USING btree (session_id) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_session_id_prefix ON message_request USING btree ("session_id" varchar_pattern_ops) WHERE "message_request"."deleted_at" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_session_identity_created_at ON message_request USING btree (COALESCE("session_identity", "session_id"), "created_at" DESC NULLS LAST, id DESC NULLS LAST) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_session_seq ON message_request USING btree (session_id, request_sequence) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_session_user_info ON message_request USING btree (session_id, created_at, user_id, key) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_status_code_active ON message_request USING btree (status_code) WHERE "message_request"."deleted_at" IS NULL AND "message_request"."status_code" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_user_created_at_cost_stats ON message_request USING btree (user_id, created_at, cost_usd) WHERE "message_request"."deleted_at" IS NULL AND ("message_request"."blocked_by" IS NULL OR "message_request"."blocked_by" <> 'warmup');
CREATE INDEX IF NOT EXISTS idx_message_request_user_date_cost ON message_request USING btree (user_id, created_at, cost_usd) WHERE "message_request"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_message_request_user_id ON message_request USING btree (user_id);
CREATE INDEX IF NOT EXISTS idx_message_request_user_query ON message_request USING btree (user_id, created_at) WHERE "message_request"."deleted_at" IS NULL;
-- From 0037_cursor_pagination_index.sql: in live databases though absent from schema.ts.
CREATE INDEX IF NOT EXISTS idx_message_request_cursor ON message_request USING btree (created_at DESC, id DESC);

CREATE INDEX IF NOT EXISTS idx_usage_ledger_created_at_desc_id ON usage_ledger USING btree (created_at DESC NULLS LAST, id DESC NULLS LAST);
CREATE INDEX IF NOT EXISTS idx_usage_ledger_created_at_minute ON usage_ledger USING btree (date_trunc('minute', "created_at" AT TIME ZONE 'UTC'));
CREATE INDEX IF NOT EXISTS idx_usage_ledger_key_cost ON usage_ledger USING btree (key, created_at, cost_usd, endpoint) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_key_created_at ON usage_ledger USING btree (key, created_at) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_key_created_at_desc_cover ON usage_ledger USING btree (key, "created_at" DESC NULLS LAST, final_provider_id) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_model ON usage_ledger USING btree (model) WHERE "usage_ledger"."model" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_provider_cost_cover ON usage_ledger USING btree (final_provider_id, created_at, cost_usd, endpoint) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_provider_created_at ON usage_ledger USING btree (final_provider_id, created_at) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE UNIQUE INDEX IF NOT EXISTS idx_usage_ledger_request_id ON usage_ledger USING btree (request_id);
CREATE INDEX IF NOT EXISTS idx_usage_ledger_session_id ON usage_ledger USING btree (session_id) WHERE "usage_ledger"."session_id" IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_session_identity ON usage_ledger USING btree (COALESCE("session_identity", "session_id"));
CREATE INDEX IF NOT EXISTS idx_usage_ledger_session_identity_created_at ON usage_ledger USING btree (COALESCE("session_identity", "session_id"), user_id, "created_at" DESC NULLS LAST) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_user_cost_cover ON usage_ledger USING btree (user_id, created_at, cost_usd, endpoint) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_user_created_at ON usage_ledger USING btree (user_id, created_at) WHERE "usage_ledger"."blocked_by" IS NULL AND "usage_ledger"."is_replay" = false;
CREATE INDEX IF NOT EXISTS idx_usage_ledger_user_id_reset ON usage_ledger USING btree (user_id);

CREATE INDEX IF NOT EXISTS idx_provider_endpoints_created_at ON provider_endpoints USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_provider_endpoints_deleted_at ON provider_endpoints USING btree (deleted_at);
CREATE INDEX IF NOT EXISTS idx_provider_endpoints_enabled ON provider_endpoints USING btree (is_enabled, vendor_id, provider_type) WHERE "provider_endpoints"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_provider_endpoints_pick_enabled ON provider_endpoints USING btree (vendor_id, provider_type, is_enabled, sort_order, id) WHERE "provider_endpoints"."deleted_at" IS NULL;
CREATE INDEX IF NOT EXISTS idx_provider_endpoints_vendor_type ON provider_endpoints USING btree (vendor_id, provider_type) WHERE "provider_endpoints"."deleted_at" IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uniq_provider_endpoints_vendor_type_url ON provider_endpoints USING btree (vendor_id, provider_type, url) WHERE "provider_endpoints"."deleted_at" IS NULL;

CREATE INDEX IF NOT EXISTS idx_provider_endpoint_probe_logs_created_at ON provider_endpoint_probe_logs USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_provider_endpoint_probe_logs_endpoint_created_at ON provider_endpoint_probe_logs USING btree (endpoint_id, created_at DESC NULLS LAST);

CREATE INDEX IF NOT EXISTS idx_model_prices_aliases ON model_prices USING gin ((("price_data" -> 'aliases')));
CREATE INDEX IF NOT EXISTS idx_model_prices_created_at ON model_prices USING btree (created_at DESC NULLS LAST);
CREATE INDEX IF NOT EXISTS idx_model_prices_latest ON model_prices USING btree (model_name, created_at DESC NULLS LAST);
CREATE INDEX IF NOT EXISTS idx_model_prices_model_name ON model_prices USING btree (model_name);
CREATE INDEX IF NOT EXISTS idx_model_prices_source ON model_prices USING btree (source);
CREATE INDEX IF NOT EXISTS idx_model_prices_vendor ON model_prices USING btree ((("price_data" ->> 'vendor')));
