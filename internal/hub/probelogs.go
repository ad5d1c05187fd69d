package hub

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// ProbeLogs streams the probe logs p selects to fn, newest first (CCH's order: created_at
// descending with NULLs last, then id descending), at most p.MaxLines of them. An error from fn
// stops the stream and is returned as is. fn runs while the query holds a pooled connection, so
// it should only write the line out.
func (d *DB) ProbeLogs(ctx context.Context, p export.ProbeLogParams, fn func(export.ProbeLog) error) error {
	where, args, err := probeFilter(p)
	if err != nil {
		return err
	}
	args = append(args, probeLimit(p))
	rows, err := d.pool.Query(ctx, `
		SELECT id, endpoint_id, ok, status_code, latency_ms, error_type, error_message, created_at
		FROM provider_endpoint_probe_logs`+where+`
		ORDER BY created_at DESC NULLS LAST, id DESC
		LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return fmt.Errorf("hub: stream probe logs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l export.ProbeLog
		var at *time.Time
		if err := rows.Scan(&l.ID, &l.EndpointID, &l.OK, &l.StatusCode, &l.LatencyMs, &l.ErrorType, &l.ErrorMessage, &at); err != nil {
			return fmt.Errorf("hub: stream probe logs: %w", err)
		}
		if at != nil { // the column defaults to now(), so NULL is only possible by hand
			l.CreatedAt = *at
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("hub: stream probe logs: %w", err)
	}
	return nil
}

// CountProbeLogs counts the probe logs p selects, up to p.MaxLines: the total for an export's
// progress.
func (d *DB) CountProbeLogs(ctx context.Context, p export.ProbeLogParams) (int64, error) {
	where, args, err := probeFilter(p)
	if err != nil {
		return 0, err
	}
	args = append(args, probeLimit(p))
	var n int64
	err = d.pool.QueryRow(ctx, `
		SELECT count(*) FROM (
			SELECT 1 FROM provider_endpoint_probe_logs`+where+`
			LIMIT $`+strconv.Itoa(len(args))+`
		) selected`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("hub: count probe logs: %w", err)
	}
	return n, nil
}

// probeLimit is p.MaxLines within the domain's bounds; params that came through
// export.ParseProbeLogParams are already within them.
func probeLimit(p export.ProbeLogParams) int {
	switch {
	case p.MaxLines <= 0:
		return export.DefaultProbeMaxLines
	case p.MaxLines > export.MaxProbeMaxLines:
		return export.MaxProbeMaxLines
	}
	return p.MaxLines
}

// probeFilter turns p's filters into a WHERE clause (empty, or starting with a space) and its
// arguments, all ANDed.
func probeFilter(p export.ProbeLogParams) (string, []any, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if p.EndpointID != nil {
		conds = append(conds, "endpoint_id = "+arg(*p.EndpointID))
	}
	if p.StartTime != nil {
		conds = append(conds, "created_at >= "+arg(*p.StartTime))
	}
	if p.EndTime != nil {
		conds = append(conds, "created_at < "+arg(*p.EndTime))
	}
	switch p.Result {
	case "", "all":
	case "ok":
		conds = append(conds, "ok")
	case "fail":
		conds = append(conds, "NOT ok")
	default:
		return "", nil, export.Invalid("params.result", "must be \"all\", \"ok\" or \"fail\", not %q", p.Result)
	}
	if p.Search != "" {
		// Like CCH's terminal filter: a case-insensitive substring of the message, the error
		// type or the status code. Backslash is LIKE's default escape character.
		pat := arg("%" + escapeLike(p.Search) + "%")
		conds = append(conds, "(error_message ILIKE "+pat+" OR error_type ILIKE "+pat+" OR status_code::text ILIKE "+pat+")")
	}
	if len(conds) == 0 {
		return "", args, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// escapeLike makes s match itself literally inside a LIKE pattern.
func escapeLike(s string) string { return likeEscaper.Replace(s) }
