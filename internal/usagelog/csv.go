package usagelog

import (
	"compress/gzip"
	"io"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// bom starts every CSV file so that Excel reads it as UTF-8.
const bom = "\uFEFF"

// CSV writes DESIGN.md's usage-log CSV: a BOM, the header row, then one
// record per row, every record (the last too) ending in LF.
type CSV struct {
	w   io.Writer
	loc *time.Location
	buf []byte
}

// NewCSV writes the BOM and the header row to w and returns the encoder.
func NewCSV(w io.Writer, o Options) (*CSV, error) {
	e := &CSV{w: w, loc: o.loc(), buf: make([]byte, 0, 1024)}
	b := append(e.buf[:0], bom...)
	for i, h := range Columns(o.Lang) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendText(b, h)
	}
	b = append(b, '\n')
	e.buf = b
	if _, err := w.Write(b); err != nil {
		return nil, writeErr("csv header", err)
	}
	return e, nil
}

// Write implements Encoder.
func (e *CSV) Write(r *export.UsageRow) error {
	e.buf = AppendCSVRecord(e.buf[:0], r, e.loc)
	if _, err := e.w.Write(e.buf); err != nil {
		return writeErr("csv row", err)
	}
	return nil
}

// Finish implements Encoder; a CSV has nothing after its last record.
func (e *CSV) Finish() error { return nil }

// Close implements Encoder.
func (e *CSV) Close() error { return nil }

// AppendCSVRecord appends r's CSV record, LF included, times in loc.
func AppendCSVRecord(b []byte, r *export.UsageRow, loc *time.Location) []byte {
	b = appendTime(b, r.CreatedAt, loc)
	b = append(b, ',')
	b = appendText(b, r.User)
	b = append(b, ',')
	b = appendText(b, r.Key)
	b = append(b, ',')
	if r.Provider != nil {
		b = appendText(b, *r.Provider)
	}
	b = append(b, ',')
	b = appendText(b, r.Model)
	b = append(b, ',')
	b = appendText(b, r.OriginalModel)
	b = append(b, ',')
	b = appendText(b, r.Endpoint)
	b = append(b, ',')
	if r.StatusCode != nil {
		b = appendInt(b, *r.StatusCode)
	}
	for _, v := range [...]int64{r.InputTokens, r.OutputTokens, r.CacheWrite5m, r.CacheWrite1h, r.CacheRead, r.TotalTokens} {
		b = append(b, ',')
		b = appendInt(b, v)
	}
	b = append(b, ',')
	if out, ok := appendDecimal(b, r.CostUSD); ok {
		b = out
	} else {
		b = appendText(b, r.CostUSD) // NaN: say what the database holds
	}
	b = append(b, ',')
	if r.DurationMs != nil {
		b = appendInt(b, *r.DurationMs)
	}
	b = append(b, ',')
	b = appendText(b, r.SessionID)
	b = append(b, ',')
	b = appendInt(b, r.RetryCount)
	return append(b, '\n')
}

// CSVGzip is the CSV, gzip-compressed as it is written.
type CSVGzip struct {
	*CSV
	zw *gzip.Writer
}

// NewCSVGzip returns a CSV encoder whose bytes are gzipped into w. The gzip
// header carries no name or time, so the same rows give the same bytes.
func NewCSVGzip(w io.Writer, o Options) (*CSVGzip, error) {
	zw := gzip.NewWriter(w)
	c, err := NewCSV(zw, o)
	if err != nil {
		return nil, err
	}
	return &CSVGzip{CSV: c, zw: zw}, nil
}

// Finish implements Encoder: it ends the gzip stream.
func (e *CSVGzip) Finish() error {
	if err := e.zw.Close(); err != nil {
		return writeErr("gzip trailer", err)
	}
	return nil
}
