package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

type sseEvent struct {
	event, id string
	job       export.Job
}

// sseReader reads a text/event-stream; comments are kept apart.
type sseReader struct {
	t        *testing.T
	r        *bufio.Reader
	comments []string
}

// next returns the next event, or io.EOF when the stream has ended.
func (s *sseReader) next() (sseEvent, error) {
	s.t.Helper()
	var ev sseEvent
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if line == "" && data == "" {
				return ev, err
			}
			s.t.Fatalf("stream cut inside an event: %q, %v", line, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data == "" {
				continue
			}
			if err := json.Unmarshal([]byte(data), &ev.job); err != nil {
				s.t.Fatalf("event data %q: %v", data, err)
			}
			return ev, nil
		case strings.HasPrefix(line, ":"):
			s.comments = append(s.comments, line)
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

func openEvents(t *testing.T, srv *httptest.Server, id, token string, hdr ...string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/exports/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sseReader{t: t, r: bufio.NewReader(resp.Body)}
}

func TestEventsFollowTheJobUntilItEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_sse", alice, export.StatusQueued)

	resp, stream := openEvents(t, srv, "exp_sse", aliceToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the stream")
	}

	want := func(id string, status export.Status, done int64) {
		t.Helper()
		ev, err := stream.next()
		if err != nil {
			t.Fatalf("want event %s (%s): %v", id, status, err)
		}
		if ev.event != "job" || ev.id != id || ev.job.ID != "exp_sse" || ev.job.Status != status || ev.job.Progress.Done != done {
			t.Fatalf("event = %s #%s %s done=%d, want job #%s %s done=%d", ev.event, ev.id, ev.job.Status, ev.job.Progress.Done, id, status, done)
		}
	}
	want("1", export.StatusQueued, 0)
	// Several polls pass with no change: they must not repeat the event.
	time.Sleep(30 * time.Millisecond)
	b.store.update("exp_sse", func(j *export.Job) {
		j.Status = export.StatusRunning
		j.Progress = export.Progress{Done: 10, Total: 100, Unit: "lines"}.WithPercent()
	})
	want("2", export.StatusRunning, 10)
	time.Sleep(30 * time.Millisecond)
	b.store.update("exp_sse", func(j *export.Job) {
		j.Status = export.StatusSucceeded
		j.Progress = export.Progress{Done: 100, Total: 100, Unit: "lines", Percent: 100}
	})
	want("3", export.StatusSucceeded, 100)
	if ev, err := stream.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the job ended: event %+v, err %v; want the stream to end", ev, err)
	}
}

func TestEventsOfAnEndedJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_done", alice, export.StatusFailed)

	// A reconnecting client's Last-Event-ID carries the numbering on.
	_, stream := openEvents(t, srv, "exp_done", adminToken, "Last-Event-ID", "41")
	ev, err := stream.next()
	if err != nil || ev.id != "42" || ev.job.Status != export.StatusFailed {
		t.Fatalf("event = %+v, %v; want #42 failed", ev, err)
	}
	if _, err := stream.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream went on after an ended job: %v", err)
	}
}

func TestEventsKeepAliveAndClientGone(t *testing.T) {
	t.Parallel()
	b := setup(t, func(h *handler) { h.keepAlive = 10 * time.Millisecond })
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_long", alice, export.StatusRunning)

	resp, stream := openEvents(t, srv, "exp_long", aliceToken)
	if _, err := stream.next(); err != nil {
		t.Fatal(err)
	}
	for len(stream.comments) == 0 {
		line, err := stream.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ":") {
			stream.comments = append(stream.comments, strings.TrimSpace(line))
		}
	}
	if stream.comments[0] != ": keep-alive" {
		t.Errorf("comment = %q, want \": keep-alive\"", stream.comments[0])
	}

	// Once the client hangs up the handler returns and logs the request.
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.logs.String(), `"route":"/api/v1/exports/:id/events"`) {
		if time.Now().After(deadline) {
			t.Fatal("the event stream did not stop after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
