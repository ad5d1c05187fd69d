package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Schedule is the part of a schedule every schedule has; Raw is all of it.
type Schedule struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Cron      string     `json:"cron"`
	Timezone  string     `json:"timezone"`
	Enabled   bool       `json:"enabled"`
	NextRunAt *time.Time `json:"next_run_at"` // while enabled

	// Raw is the schedule object as the API sent it.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the object it reads in Raw.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	type plain Schedule
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Schedule(p)
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

func decodeSchedule(raw []byte) (*Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(raw, &s); err != nil || s.ID == "" {
		return nil, fmt.Errorf("the API answered something that is not a schedule: %.200q", raw)
	}
	return &s, nil
}

// CreateSchedule creates a schedule from in, the API's schedule input
// (a struct or a map with its JSON members).
func (c *Client) CreateSchedule(ctx context.Context, in any) (*Schedule, error) {
	b, err := c.callJSON(ctx, http.MethodPost, "/api/v1/schedules", in)
	if err != nil {
		return nil, err
	}
	return decodeSchedule(b)
}

// UpdateSchedule changes the members of schedule id that patch sets, such
// as {"enabled": false} to pause it.
func (c *Client) UpdateSchedule(ctx context.Context, id string, patch any) (*Schedule, error) {
	b, err := c.callJSON(ctx, http.MethodPatch, "/api/v1/schedules/"+url.PathEscape(id), patch)
	if err != nil {
		return nil, err
	}
	return decodeSchedule(b)
}

// DeleteSchedule deletes schedule id.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/api/v1/schedules/"+url.PathEscape(id), nil, nil)
	return err
}

// Schedules lists every schedule, reading all the pages.
func (c *Client) Schedules(ctx context.Context) ([]*Schedule, error) {
	var all []*Schedule
	cursor := ""
	for {
		path := "/api/v1/schedules?limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		raw, err := c.Call(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Data       []*Schedule `json:"data"`
			NextCursor string      `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("the API answered something that is not a page of schedules: %w", err)
		}
		all = append(all, page.Data...)
		if cursor = page.NextCursor; cursor == "" {
			return all, nil
		}
	}
}
