package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Status is a job's state.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	StatusExpired   Status = "expired"
)

// Ended reports whether a job in this state will change no more.
func (s Status) Ended() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCanceled, StatusExpired:
		return true
	}
	return false
}

// Job is an export job as the API shows it.
type Job struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Format string `json:"format"`
	Status Status `json:"status"`
	// Params are the params as the API validated them, defaults filled in.
	Params     json.RawMessage `json:"params"`
	Progress   Progress        `json:"progress"`
	Result     *Result         `json:"result"` // once it has succeeded
	Error      *JobError       `json:"error"`
	UserID     int64           `json:"user_id"` // the owner; -1 for the admin token
	Attempts   int             `json:"attempts"`
	ScheduleID string          `json:"schedule_id"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	UpdatedAt  time.Time       `json:"updated_at"`

	// Raw is the job object as the API sent it, members this package does
	// not know included.
	Raw json.RawMessage `json:"-"`
}

// Progress is how far a job has come. Percent stays below 100 until the
// job has ended; a Total of 0 is unknown (a backup's bytes).
type Progress struct {
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Unit    string  `json:"unit"` // rows, lines, bytes, ...
	Percent float64 `json:"percent"`
	Note    string  `json:"note"` // a phase, such as waiting for the backup lock
}

// Result is a succeeded job's file, or for types that make none (restores,
// drills) their report in Details.
type Result struct {
	Filename    string          `json:"filename"`
	ContentType string          `json:"content_type"`
	SizeBytes   int64           `json:"size_bytes"`
	SHA256      string          `json:"sha256"` // hex; "" when there is no file
	Rows        int64           `json:"rows"`
	ExpiresAt   *time.Time      `json:"expires_at"`
	Details     json.RawMessage `json:"details"`
}

// JobError says why a job failed.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Detail is the raw cause, shown to administrators only.
	Detail string `json:"detail"`
}

// Ended reports whether the job will change no more.
func (j *Job) Ended() bool { return j.Status.Ended() }

// UnmarshalJSON keeps the object it reads in Raw.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*j = Job(p)
	j.Raw = append(json.RawMessage(nil), b...)
	return nil
}

func decodeJob(raw []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(raw, &j); err != nil || j.ID == "" {
		return nil, fmt.Errorf("the API answered something that is not a job: %.200q", raw)
	}
	return &j, nil
}

// ExportRequest asks for one export.
type ExportRequest struct {
	Type   string         // an API type name, such as usage_logs
	Format string         // "" for the type's default
	Params map[string]any // the type's params
	// IdempotencyKey names the request so that sending it again makes no
	// second job; "" is a new random key per CreateExport.
	IdempotencyKey string
	// OnRetry, when set, hears each transient failure before CreateExport
	// tries again.
	OnRetry func(err error)
}

// CreateExport asks for a job. A transient failure (the network, a proxy's
// 502, 503 or 504) is tried again up to three times with the same
// Idempotency-Key, so one call never makes two jobs.
func (c *Client) CreateExport(ctx context.Context, r ExportRequest) (*Job, error) {
	body := map[string]any{"type": r.Type, "params": r.Params}
	if r.Params == nil {
		body["params"] = map[string]any{}
	}
	if r.Format != "" {
		body["format"] = r.Format
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	key := r.IdempotencyKey
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		key = hex.EncodeToString(b[:])
	}
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		b, err := c.Call(ctx, http.MethodPost, "/api/v1/exports", raw, http.Header{"Idempotency-Key": {key}})
		if err == nil {
			return decodeJob(b)
		}
		if !transient(err) || attempt == 4 || ctx.Err() != nil {
			return nil, fmt.Errorf("create the export: %w", err)
		}
		if r.OnRetry != nil {
			r.OnRetry(err)
		}
		if serr := sleep(ctx, delay); serr != nil {
			return nil, fmt.Errorf("create the export: %w", err)
		}
		delay *= 2
	}
}

// Job reads job id.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	b, err := c.Call(ctx, http.MethodGet, "/api/v1/exports/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return nil, err
	}
	return decodeJob(b)
}

// WaitJob follows job until it ends, through its event stream or by
// polling every second when the stream is not available or breaks off
// (riding out a minute of transient failures). onUpdate, when set, sees
// each state read. It returns the last state seen, job itself if none,
// also with an error (ctx's when ctx ended).
func (c *Client) WaitJob(ctx context.Context, job *Job, onUpdate func(*Job)) (*Job, error) {
	last, err := c.FollowJob(ctx, job.ID, onUpdate)
	if last != nil {
		job = last
	}
	if err == nil && job.Ended() {
		return job, nil
	}
	var ae *APIError
	if errors.As(err, &ae) && !transient(err) {
		return job, err
	}
	if ctx.Err() != nil {
		return job, ctx.Err()
	}
	return c.poll(ctx, job, onUpdate)
}

// streamIdleTimeout ends a silent event stream: the server sends a
// keep-alive every 15 s.
const streamIdleTimeout = 45 * time.Second

// FollowJob reads job id's server-sent events until the job ends or the
// stream does (io.ErrUnexpectedEOF when it ends first); onUpdate, when
// set, sees each state. It returns the last state seen, nil if none.
func (c *Client) FollowJob(ctx context.Context, id string, onUpdate func(*Job)) (*Job, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(streamIdleTimeout, cancel)
	defer idle.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/api/v1/exports/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, answerError(resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, fmt.Errorf("the event stream answered %q", ct)
	}
	var (
		last  *Job
		event string
		data  []string
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		idle.Reset(streamIdleTimeout)
		line := sc.Text()
		switch {
		case line == "":
			if (event == "" || event == "job") && len(data) > 0 {
				j, err := decodeJob([]byte(strings.Join(data, "\n")))
				if err != nil {
					return last, err
				}
				last = j
				if onUpdate != nil {
					onUpdate(j)
				}
				if j.Ended() {
					return last, nil
				}
			}
			event, data = "", data[:0]
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	return last, io.ErrUnexpectedEOF
}

// poll reads the job every second until it ends, riding out a minute of
// transient failures.
func (c *Client) poll(ctx context.Context, job *Job, onUpdate func(*Job)) (*Job, error) {
	var failingSince time.Time
	for {
		if err := sleep(ctx, time.Second); err != nil {
			return job, err
		}
		j, err := c.Job(ctx, job.ID)
		if err != nil {
			// Not transient: an API refusal, or an answer that is no job.
			if !transient(err) || ctx.Err() != nil {
				return job, err
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > time.Minute {
				return job, fmt.Errorf("read job %s: %w", job.ID, err)
			}
			continue
		}
		failingSince = time.Time{}
		job = j
		if onUpdate != nil {
			onUpdate(job)
		}
		if job.Ended() {
			return job, nil
		}
	}
}
