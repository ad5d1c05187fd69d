package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

func newWorldRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x776f726c64000000)) // "world"
}

// timeOrNil turns an optional time into a COPY value.
func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var modelPrices = []struct{ model, data string }{
	{"claude-sonnet-4-5-20250929", `{"mode":"chat","litellm_provider":"anthropic","vendor":"anthropic","input_cost_per_token":3e-06,"output_cost_per_token":1.5e-05,"cache_creation_input_token_cost":3.75e-06,"cache_read_input_token_cost":3e-07,"aliases":["claude-sonnet-4-5"]}`},
	{"claude-opus-4-1-20250805", `{"mode":"chat","litellm_provider":"anthropic","vendor":"anthropic","input_cost_per_token":1.5e-05,"output_cost_per_token":7.5e-05,"aliases":["claude-opus-4-1"]}`},
	{"claude-haiku-4-5-20251001", `{"mode":"chat","litellm_provider":"anthropic","vendor":"anthropic","input_cost_per_token":1e-06,"output_cost_per_token":5e-06}`},
	{"gpt-5-codex", `{"mode":"responses","litellm_provider":"openai","vendor":"openai","input_cost_per_token":1.25e-06,"output_cost_per_token":1e-05}`},
	{"gpt-4.1", `{"mode":"chat","litellm_provider":"openai","vendor":"openai","input_cost_per_token":2e-06,"output_cost_per_token":8e-06}`},
	{"gemini-2.5-pro", `{"mode":"chat","litellm_provider":"gemini","vendor":"google","input_cost_per_token":1.25e-06,"output_cost_per_token":1e-05}`},
	{"deepseek-chat", `{"mode":"chat","litellm_provider":"deepseek","vendor":"deepseek","input_cost_per_token":2.7e-07,"output_cost_per_token":1.1e-06}`},
}

// insertFixtures writes the world's small tables.
func insertFixtures(ctx context.Context, tx pgx.Tx, w *world, rep *Report) error {
	// Fixtures predate the month of traffic.
	born := func(i int32) time.Time { return w.now.Add(-40*24*time.Hour + time.Duration(i)*time.Hour) }

	var rows [][]any
	for _, u := range w.users {
		tags := `[]`
		if u.role == "admin" {
			tags = `["ops"]`
		} else if u.id%3 == 0 {
			tags = `["team-a","vip"]`
		}
		rows = append(rows, []any{u.id, u.name, strOrNil(u.desc), u.role, u.enabled, timeOrNil(u.expiresAt), timeOrNil(u.deletedAt), []byte(tags), born(u.id), born(u.id)})
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "name", "description", "role", "is_enabled", "expires_at", "deleted_at", "tags", "created_at", "updated_at"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("seed: insert users: %w", err)
	}
	rep.Users = n

	rows = rows[:0]
	for _, k := range w.keys {
		rows = append(rows, []any{k.id, k.userID, k.key, k.name, k.enabled, timeOrNil(k.expiresAt), k.webUI, timeOrNil(k.deletedAt), born(k.id), born(k.id)})
	}
	if n, err = tx.CopyFrom(ctx, pgx.Identifier{"keys"}, []string{"id", "user_id", "key", "name", "is_enabled", "expires_at", "can_login_web_ui", "deleted_at", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seed: insert keys: %w", err)
	}
	rep.Keys = n

	rows = rows[:0]
	for _, v := range w.vendors {
		rows = append(rows, []any{v.id, v.domain, v.name, v.siteURL, born(v.id), born(v.id)})
	}
	if _, err = tx.CopyFrom(ctx, pgx.Identifier{"provider_vendors"}, []string{"id", "website_domain", "display_name", "website_url", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seed: insert provider vendors: %w", err)
	}

	rows = rows[:0]
	for _, p := range w.providers {
		rows = append(rows, []any{p.id, p.name, p.url, fmt.Sprintf("sk-upstream-seed-%04d", p.id), p.vendorID, p.deletedAt == nil, p.weight, p.priority, costMults[p.costMult], strOrNil(p.groupTag), p.typ, timeOrNil(p.deletedAt), born(p.id), born(p.id)})
	}
	if n, err = tx.CopyFrom(ctx, pgx.Identifier{"providers"}, []string{"id", "name", "url", "key", "provider_vendor_id", "is_enabled", "weight", "priority", "cost_multiplier", "group_tag", "provider_type", "deleted_at", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seed: insert providers: %w", err)
	}
	rep.Providers = n

	rows = rows[:0]
	for _, e := range w.endpoints {
		rows = append(rows, []any{e.id, e.vendorID, e.typ, e.url, e.label, e.sortOrder, e.enabled, timeOrNil(e.deletedAt), born(e.id), born(e.id)})
	}
	if n, err = tx.CopyFrom(ctx, pgx.Identifier{"provider_endpoints"}, []string{"id", "vendor_id", "provider_type", "url", "label", "sort_order", "is_enabled", "deleted_at", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seed: insert provider endpoints: %w", err)
	}
	rep.Endpoints = n

	if _, err = tx.Exec(ctx, `INSERT INTO system_settings (id, timezone, enable_high_concurrency_mode, enable_auto_cleanup, cleanup_retention_days, cleanup_batch_size, intercept_anthropic_warmup_requests, created_at, updated_at)
		VALUES (1, $1, false, false, 30, 10000, true, $2, $2)`, Timezone, born(0)); err != nil {
		return fmt.Errorf("seed: insert system settings: %w", err)
	}

	rows = rows[:0]
	for i, m := range modelPrices {
		rows = append(rows, []any{int32(i + 1), m.model, []byte(m.data), "cloud", born(int32(i)), born(int32(i))})
	}
	if _, err = tx.CopyFrom(ctx, pgx.Identifier{"model_prices"}, []string{"id", "model_name", "price_data", "source", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seed: insert model prices: %w", err)
	}
	return nil
}
