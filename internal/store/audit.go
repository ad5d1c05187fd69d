package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// AuditEntries implements export.AuditStore: newest first, by (at, id).
// The cursor is the last entry's time (microseconds) and id.
func (s *Store) AuditEntries(ctx context.Context, f export.AuditFilter) (export.AuditPage, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		if strings.Contains(f.Actor, "/") {
			where = append(where, "actor = "+arg(f.Actor))
		} else {
			where = append(where, "(actor = "+arg(f.Actor)+" OR starts_with(actor, "+arg(f.Actor+"/")+"))")
		}
	}
	if prefix, ok := strings.CutSuffix(f.Action, ".*"); ok {
		where = append(where, "starts_with(action, "+arg(prefix+".")+")")
	} else if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Since != nil {
		where = append(where, "at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		where = append(where, "at < "+arg(*f.Until))
	}
	if f.Cursor != "" {
		at, id, err := decodeAuditCursor(f.Cursor)
		if err != nil {
			return export.AuditPage{}, err
		}
		where = append(where, "(at, id) < ("+arg(at)+", "+arg(id)+")")
	}
	q := `SELECT id, at, actor, user_id, action, target, params, address, outcome FROM hubexport.audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return export.AuditPage{}, fmt.Errorf("store: list audit: %w", err)
	}
	defer rows.Close()
	page := export.AuditPage{Entries: []export.AuditRecord{}}
	for rows.Next() {
		var (
			r      export.AuditRecord
			params []byte
		)
		if err := rows.Scan(&r.ID, &r.At, &r.Actor, &r.UserID, &r.Action, &r.Target, &params, &r.Address, &r.Outcome); err != nil {
			return export.AuditPage{}, fmt.Errorf("store: list audit: %w", err)
		}
		if params != nil {
			if err := json.Unmarshal(params, &r.Params); err != nil {
				return export.AuditPage{}, fmt.Errorf("store: decode audit params of %d: %w", r.ID, err)
			}
		}
		r.At = r.At.UTC()
		page.Entries = append(page.Entries, r)
	}
	if err := rows.Err(); err != nil {
		return export.AuditPage{}, fmt.Errorf("store: list audit: %w", err)
	}
	if len(page.Entries) > f.Limit {
		page.Entries = page.Entries[:f.Limit]
		last := page.Entries[f.Limit-1]
		page.NextCursor = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%d", last.At.UnixMicro(), last.ID))
	}
	return page, nil
}

func decodeAuditCursor(cursor string) (time.Time, int64, error) {
	bad := export.Invalid("cursor", "is not a cursor this API returned; start again without it")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, 0, bad
	}
	us, idStr, ok := strings.Cut(string(raw), ":")
	if !ok {
		return time.Time{}, 0, bad
	}
	micros, err1 := strconv.ParseInt(us, 10, 64)
	id, err2 := strconv.ParseInt(idStr, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, bad
	}
	return time.UnixMicro(micros).UTC(), id, nil
}

// printableJSON returns v with every string in it (map keys included)
// made printable; strings of named types become plain strings.
func printableJSON(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return export.Printable(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[export.Printable(k)] = printableJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = printableJSON(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = export.Printable(e)
		}
		return out
	case json.RawMessage:
		return x // escaped after a round trip through any
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return export.Printable(rv.String())
	}
	return v
}
