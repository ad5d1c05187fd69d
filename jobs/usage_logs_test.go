package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// usageFakeSource yields n rows, estimating est (or failing the estimate).
type usageFakeSource struct {
	n, est int64
	estErr error
	failAt int64
}

func (s *usageFakeSource) EstimateUsageLogs(context.Context, export.UsageLogParams) (int64, error) {
	return s.est, s.estErr
}

func (s *usageFakeSource) UsageLogs(_ context.Context, _ export.UsageLogParams, fn func(*export.UsageRow) error) error {
	var r export.UsageRow
	for i := int64(1); i <= s.n; i++ {
		if i == s.failAt {
			return errors.New("connection reset")
		}
		r = export.UsageRow{ID: i, CreatedAt: time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC), User: "u", Key: "k", CostUSD: "0.5"}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// usageFakeStore records progress writes; nothing else of JobStore is used.
type usageFakeStore struct {
	JobStore
	progress []export.Progress
}

func (s *usageFakeStore) SetProgress(_ context.Context, _, _ string, p export.Progress) error {
	s.progress = append(s.progress, p)
	return nil
}

func usageProduce(t *testing.T, src *usageFakeSource, format export.Format, params string) (string, int64, []export.Progress, error) {
	t.Helper()
	store := &usageFakeStore{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &UsageLogsHandler{Runner: &Runner{Log: log}, Source: src}
	pr := &Progress{store: store, jobID: "exp_1", token: "t", every: 0, cancel: func(error) {}, log: log}
	var out bytes.Buffer
	job := &export.Job{ID: "exp_1", Format: format, Params: json.RawMessage(params)}
	n, err := h.produce(t.Context(), job, &out, pr)
	if ferr := pr.Flush(t.Context()); ferr != nil {
		t.Fatal(ferr)
	}
	return out.String(), n, store.progress, err
}

func TestUsageLogsProducer(t *testing.T) {
	t.Parallel()
	t.Run("ProgressInRows", func(t *testing.T) {
		out, n, progress, err := usageProduce(t, &usageFakeSource{n: 3000, est: 1000}, export.FormatCSV, `{"header_lang":"en","timezone":"UTC","user_id":2}`)
		if err != nil || n != 3000 {
			t.Fatalf("n %d, err %v", n, err)
		}
		if !strings.HasPrefix(out, "\uFEFFTime,") || strings.Count(out, "\n") != 3001 {
			t.Errorf("output %.80q… with %d lines", out, strings.Count(out, "\n"))
		}
		first, last := progress[0], progress[len(progress)-1]
		if first.Done != 0 || first.Total != 1000 || first.Unit != "rows" {
			t.Errorf("first progress %+v, want 0 of the estimate's 1000 rows", first)
		}
		for _, p := range progress {
			if p.Total > 0 && p.Done > p.Total {
				t.Errorf("progress %+v: done past the total", p)
			}
		}
		if last.Done != 3000 || last.Total != 3000 {
			t.Errorf("last progress %+v, want 3000 of 3000", last)
		}
	})
	t.Run("EstimateIsOnlyAHint", func(t *testing.T) {
		out, n, progress, err := usageProduce(t, &usageFakeSource{n: 5, estErr: errors.New("planner down")}, export.FormatJSONL, `{"header_lang":"zh","timezone":"UTC"}`)
		if err != nil || n != 5 || strings.Count(out, "\n") != 5 || progress[0].Total != 0 {
			t.Errorf("n %d, err %v, %d lines, first progress %+v", n, err, strings.Count(out, "\n"), progress[0])
		}
	})
	t.Run("SourceErrorFailsTheAttempt", func(t *testing.T) {
		_, n, _, err := usageProduce(t, &usageFakeSource{n: 10, failAt: 4}, export.FormatXLSX, `{"header_lang":"zh","timezone":"UTC"}`)
		if err == nil || n != 3 {
			t.Errorf("n %d, err %v: want the source's error after 3 rows", n, err)
		}
	})
	t.Run("StoredParamsAreChecked", func(t *testing.T) {
		for _, params := range []string{`{"timezone":"Nowhere/Else"}`, `[]`} {
			_, _, _, err := usageProduce(t, &usageFakeSource{n: 1}, export.FormatCSV, params)
			if export.KindOf(err) != export.KindInvalid {
				t.Errorf("%s: %v, want an invalid-input error (no retry)", params, err)
			}
		}
	})
	t.Run("EveryFormat", func(t *testing.T) {
		for _, f := range []export.Format{export.FormatCSV, export.FormatCSVGz, export.FormatXLSX, export.FormatJSONL} {
			if _, n, _, err := usageProduce(t, &usageFakeSource{n: 2}, f, `{"header_lang":"zh","timezone":"Asia/Shanghai"}`); err != nil || n != 2 {
				t.Errorf("%s: n %d, err %v", f, n, err)
			}
		}
		if _, _, _, err := usageProduce(t, &usageFakeSource{n: 2}, export.FormatText, `{}`); export.KindOf(err) != export.KindInvalid {
			t.Errorf("txt: %v, want an invalid-input error", err)
		}
	})
}
