package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hubexport/hubexport/internal/export"
)

// UsageLogs streams the usage-log rows p selects to fn, newest first (created_at descending,
// then id descending), with the joins, filters and NULL rules of hub-facts §2.4: rows come from
// message_request, or from usage_ledger when message_request is empty (after restoring a backup
// without logs). It is one server-side query whose rows pgx reads off the connection as fn
// consumes them, so memory does not grow with the export and the rows are one consistent
// snapshot.
//
// fn gets the same *export.UsageRow every time, overwritten per row: it must not keep it. An
// error from fn stops the stream and is returned as is. fn runs while the query holds a pooled
// connection.
func (d *DB) UsageLogs(ctx context.Context, p export.UsageLogParams, fn func(*export.UsageRow) error) error {
	sql, args, err := d.usageQuery(ctx, p)
	if err != nil {
		return err
	}
	if sql == "" {
		return nil
	}
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("hub: stream usage logs: %w", err)
	}
	defer rows.Close()
	var (
		r                  export.UsageRow
		at                 pgtype.Timestamptz
		provider           pgtype.Text
		keyID              pgtype.Int8
		status, durationMs pgtype.Int8
	)
	for rows.Next() {
		if err := rows.Scan(&r.ID, &at, &r.UserID, &r.User, &keyID, &r.Key, &r.ProviderID, &provider, &r.Model, &r.OriginalModel, &r.Endpoint,
			&status, &r.InputTokens, &r.OutputTokens, &r.CacheWrite5m, &r.CacheWrite1h, &r.CacheRead, &r.TotalTokens,
			&r.CostUSD, &durationMs, &r.SessionID, &r.RetryCount); err != nil {
			return fmt.Errorf("hub: stream usage logs: %w", err)
		}
		r.CreatedAt = at.Time // zero when NULL: the column defaults to now() but is nullable
		r.KeyID, r.Provider, r.StatusCode, r.DurationMs = nil, nil, nil, nil
		if keyID.Valid {
			r.KeyID = &keyID.Int64
		}
		if provider.Valid {
			r.Provider = &provider.String
		}
		if status.Valid {
			r.StatusCode = &status.Int64
		}
		if durationMs.Valid {
			r.DurationMs = &durationMs.Int64
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("hub: stream usage logs: %w", err)
	}
	return nil
}

// EstimateUsageLogs estimates how many rows UsageLogs(p) yields, for an export's progress: the
// planner's row estimate for the very query UsageLogs runs (EXPLAIN, which plans but does not
// execute it). It costs a planning, not a scan, so it can be off, most of all for filters the
// statistics know little about (min_retry_count, session ids): callers must treat it as a hint.
func (d *DB) EstimateUsageLogs(ctx context.Context, p export.UsageLogParams) (int64, error) {
	sql, args, err := d.usageQuery(ctx, p)
	if err != nil || sql == "" {
		return 0, err
	}
	var plan []byte
	if err := d.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		return 0, fmt.Errorf("hub: estimate usage logs: %w", err)
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &out); err != nil || len(out) == 0 {
		return 0, fmt.Errorf("hub: estimate usage logs: unexpected plan %.200q: %v", plan, err)
	}
	return int64(out[0].Plan.Rows), nil
}

// UsageLogSQL returns the query UsageLogs(p) runs and its arguments (empty when no row can
// match), for comparing the export with other clients: the benchmark runs it through psql.
func (d *DB) UsageLogSQL(ctx context.Context, p export.UsageLogParams) (string, []any, error) {
	return d.usageQuery(ctx, p)
}

// usageQuery builds the query for p: over message_request, or over usage_ledger when
// message_request holds no row at all, soft-deleted ones included (CCH's isLedgerOnlyMode).
// An empty query means no row can match.
func (d *DB) usageQuery(ctx context.Context, p export.UsageLogParams) (string, []any, error) {
	var requests bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM message_request)`).Scan(&requests); err != nil {
		return "", nil, fmt.Errorf("hub: usage logs: look for requests: %w", err)
	}
	if requests {
		sql, args := usageRequestQuery(p)
		return sql, args, nil
	}
	if p.MinRetryCount > 0 {
		// The ledger keeps no provider chain: no row has a retry (CCH returns nothing too).
		return "", nil, nil
	}
	sql, args := usageLedgerQuery(p)
	return sql, args, nil
}

// usageKeyJoins pick one keys row per request. keys.key is not unique (hub-facts §1.3), and a
// plain join by key string would repeat a request once per duplicate: prefer the duplicate owned
// by the request's user, else the lowest id. Both lists are as small as the keys table, so the
// planner hashes them once instead of probing keys per row.
const usageKeyJoins = `
	LEFT JOIN (SELECT DISTINCT ON (key, user_id) key, user_id, id, name FROM keys ORDER BY key, user_id, id) ku
		ON ku.key = t.key AND ku.user_id = t.user_id
	%s JOIN (SELECT DISTINCT ON (key) key, id, name FROM keys ORDER BY key, id) kn
		ON kn.key = t.key`

// usageRetryCount is CCH's getRetryCount (hub-facts §2.3) over provider_chain: 0 when any
// element records a hedge race; otherwise the number of elements that were actual requests, less
// one, never below zero. A success counts only with a truthy statusCode (JavaScript's truthiness:
// not 0, false, "" or null). Computed in SQL so that the min_retry_count filter and the Retry
// Count column are one definition (CCH's SQL filter and TS column differ slightly), and so a
// chain, which in real data holds kilobytes of routing detail per element, never leaves the
// database.
const usageRetryCount = `CASE WHEN jsonb_typeof(t.provider_chain) = 'array' THEN (
		SELECT CASE
			WHEN bool_or(e->>'reason' IN ('hedge_triggered', 'hedge_launched', 'hedge_winner', 'hedge_loser_cancelled', 'hedge_loser_billed')) THEN 0
			ELSE greatest(count(*) FILTER (WHERE
				e->>'reason' IN ('concurrent_limit_failed', 'retry_failed', 'system_error', 'resource_not_found',
					'client_error_non_retryable', 'endpoint_pool_exhausted', 'vendor_type_all_timeout', 'client_abort', 'http2_fallback')
				OR e->>'reason' IN ('request_success', 'retry_success') AND e->'statusCode' NOT IN ('0', 'false', '""', 'null')
			) - 1, 0)
		END
		FROM jsonb_array_elements(t.provider_chain) e
	) ELSE 0 END`

// usageCommonColumns are the columns message_request and usage_ledger share, in scan order
// after the user, key and provider ids and names.
const usageCommonColumns = `
	COALESCE(t.model, ''), COALESCE(t.original_model, ''), COALESCE(t.endpoint, ''), t.status_code,
	COALESCE(t.input_tokens, 0), COALESCE(t.output_tokens, 0),
	COALESCE(t.cache_creation_5m_input_tokens, 0), COALESCE(t.cache_creation_1h_input_tokens, 0),
	COALESCE(t.cache_read_input_tokens, 0),
	COALESCE(t.input_tokens, 0) + COALESCE(t.output_tokens, 0) + COALESCE(t.cache_creation_input_tokens, 0) + COALESCE(t.cache_read_input_tokens, 0),
	COALESCE(t.cost_usd, 0)::text,
	t.duration_ms,
	CASE WHEN t.session_identity_kind = 'prefix_affinity' THEN COALESCE(t.session_id, '')
		ELSE COALESCE(t.session_identity, t.session_id, '') END`

// usageRequestQuery is the query over message_request: users and keys inner-joined (a request
// whose user or key row is gone drops out, as in CCH), providers left-joined (provider 0, the
// blocked and warmup requests, has no name). Soft-deleted users, keys and providers still
// name their rows. The order matches idx_message_request_created_at_id_active, so PostgreSQL
// can walk that index instead of sorting.
func usageRequestQuery(p export.UsageLogParams) (string, []any) {
	w := usageWhere{provider: "t.provider_id", id: "t.id"}
	w.add("t.deleted_at IS NULL")
	w.filters(p)
	if p.MinRetryCount > 0 {
		w.add("(" + usageRetryCount + ") >= " + w.arg(p.MinRetryCount))
	}
	return `SELECT t.id, t.created_at, t.user_id, u.name, COALESCE(ku.id, kn.id), COALESCE(ku.name, kn.name),
		t.provider_id, pr.name,` + usageCommonColumns + `,
		` + usageRetryCount + `
	FROM message_request t
	JOIN users u ON u.id = t.user_id` + fmt.Sprintf(usageKeyJoins, "") + `
	LEFT JOIN providers pr ON pr.id = t.provider_id
	WHERE ` + strings.Join(w.conds, "\n\t\tAND ") + `
	ORDER BY t.created_at DESC NULLS LAST, t.id DESC NULLS LAST`, w.args
}

// usageLedgerQuery is the fallback over usage_ledger (hub-facts §2.4): billed rows only
// (blocked_by IS NULL, so no warmups), users and keys left-joined because the ledger outlives
// them, the provider taken from final_provider_id (and filtered on it, as CCH does), no retries.
// A key whose row is gone is named by a masked key string: CCH shows the raw key there, but an
// export file is stored and shared, and must not carry a credential.
func usageLedgerQuery(p export.UsageLogParams) (string, []any) {
	w := usageWhere{provider: "t.final_provider_id", id: "t.request_id"}
	w.add("t.blocked_by IS NULL")
	w.filters(p)
	return `SELECT t.request_id, t.created_at, t.user_id, COALESCE(u.name, 'User #' || t.user_id),
		COALESCE(ku.id, kn.id),
		COALESCE(ku.name, kn.name, CASE WHEN length(t.key) > 12 THEN left(t.key, 4) || '…' || right(t.key, 4) ELSE '…' END),
		t.final_provider_id, pr.name,` + usageCommonColumns + `,
		0::bigint
	FROM usage_ledger t
	LEFT JOIN users u ON u.id = t.user_id` + fmt.Sprintf(usageKeyJoins, "LEFT") + `
	LEFT JOIN providers pr ON pr.id = t.final_provider_id
	WHERE ` + strings.Join(w.conds, "\n\t\tAND ") + `
	ORDER BY t.created_at DESC NULLS LAST, t.request_id DESC`, w.args
}

// usageHiddenEndpoints are hidden unless the export filters on an endpoint: CCH does not bill
// them and its usage views leave them out.
const usageHiddenEndpoints = `'/v1/messages/count_tokens', '/v1/responses/compact'`

// usageWhere collects ANDed conditions over the alias t and their arguments.
type usageWhere struct {
	provider string // the provider id column filtered by provider_id
	id       string // the request id column, second in a feed's mark
	conds    []string
	args     []any
}

func (w *usageWhere) add(cond string) { w.conds = append(w.conds, cond) }

func (w *usageWhere) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// filters adds p's filters (hub-facts §2.4) but min_retry_count.
func (w *usageWhere) filters(p export.UsageLogParams) {
	if p.UserID != nil {
		w.add("t.user_id = " + w.arg(*p.UserID))
	}
	if p.KeyID != nil {
		// CCH filters on keys.id of the joined keys row, and a request joins every keys row with
		// its key string: so a request matches any of its key string's rows. One row per id at
		// most, so this is a one-off lookup, and the key string then uses the request's key index.
		w.add("t.key = (SELECT key FROM keys WHERE id = " + w.arg(*p.KeyID) + ")")
	}
	if p.ProviderID != nil {
		w.add(w.provider + " = " + w.arg(*p.ProviderID))
	}
	if p.SessionID != "" {
		// The public session is COALESCE(session_identity, session_id); a canonical identity
		// (pfx:, sid:) matches only that, anything else also the physical session id.
		s := w.arg(p.SessionID)
		if strings.HasPrefix(p.SessionID, "pfx:") || strings.HasPrefix(p.SessionID, "sid:") {
			w.add("COALESCE(t.session_identity, t.session_id) = " + s)
		} else {
			w.add("(COALESCE(t.session_identity, t.session_id) = " + s + " OR t.session_id = " + s + ")")
		}
	}
	if p.StartTime != nil {
		w.add("t.created_at >= " + w.arg(*p.StartTime))
	}
	if p.EndTime != nil {
		w.add("t.created_at < " + w.arg(*p.EndTime))
	}
	if p.After != nil {
		// A feed's rows: after its mark in the export's order (created_at, then id), which the
		// (created_at, id) index serves as a range.
		w.add("(t.created_at, " + w.id + ") > (" + w.arg(p.After.CreatedAt) + ", " + w.arg(p.After.ID) + ")")
	}
	switch {
	case p.StatusCode != nil:
		w.add("t.status_code = " + w.arg(*p.StatusCode))
	case p.ExcludeStatus200:
		w.add("(t.status_code IS NULL OR t.status_code <> 200)")
	}
	if p.Model != "" {
		w.add("t.model = " + w.arg(p.Model))
	}
	// CCH normalises endpoints as LOWER(REGEXP_REPLACE(endpoint, '/+$', '')); rtrim strips the
	// same trailing slashes for less work per row.
	if p.Endpoint != "" {
		w.add("lower(rtrim(t.endpoint, '/')) = lower(rtrim(" + w.arg(p.Endpoint) + ", '/'))")
	} else {
		w.add("(t.endpoint IS NULL OR lower(rtrim(t.endpoint, '/')) NOT IN (" + usageHiddenEndpoints + "))")
	}
}
