package usagelog

import (
	"fmt"
	"io"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Options say how rows are rendered.
type Options struct {
	// Lang is the header language: export.HeaderLangZH (default) or export.HeaderLangEN.
	Lang string
	// Location renders times; nil is UTC.
	Location *time.Location
}

func (o Options) loc() *time.Location {
	if o.Location == nil {
		return time.UTC
	}
	return o.Location
}

// Encoder writes rows to a file in one format.
type Encoder interface {
	// Write renders one row. The encoder does not keep r after Write returns.
	Write(r *export.UsageRow) error
	// Finish writes whatever the format puts after the last row. The output
	// is complete only once Finish has returned nil.
	Finish() error
	// Close releases what the encoder holds. It is safe after Finish and
	// must be called after a failure too. It never closes the underlying
	// writer.
	Close() error
}

// New returns the encoder of format f writing to w.
func New(f export.Format, w io.Writer, o Options) (Encoder, error) {
	switch f {
	case export.FormatCSV:
		return NewCSV(w, o)
	case export.FormatCSVGz:
		return NewCSVGzip(w, o)
	case export.FormatJSONL:
		return NewJSONL(w, o), nil
	case export.FormatXLSX:
		return NewXLSX(w, o)
	case export.FormatParquet:
		return NewParquet(w, o), nil
	}
	return nil, export.Errorf(export.KindInvalid, "invalid_format", "usage logs cannot be written as %q", f)
}

// Columns returns the 18 column headers in lang (DESIGN.md "Usage-log CSV").
func Columns(lang string) []string {
	if lang == export.HeaderLangEN {
		return columnsEN[:]
	}
	return columnsZH[:]
}

var (
	columnsZH = [18]string{"时间", "用户", "密钥", "供应商", "模型", "原始模型", "端点", "状态码",
		"输入 Token", "输出 Token", "缓存写入 5m", "缓存写入 1h", "缓存读取", "总 Token",
		"成本(USD)", "耗时(ms)", "Session ID", "重试次数"}
	columnsEN = [18]string{"Time", "User", "Key", "Provider", "Model", "Original Model", "Endpoint", "Status Code",
		"Input Tokens", "Output Tokens", "Cache Write 5m", "Cache Write 1h", "Cache Read", "Total Tokens",
		"Cost (USD)", "Duration (ms)", "Session ID", "Retry Count"}
)

// writeErr wraps an error from the output writer.
func writeErr(what string, err error) error {
	return fmt.Errorf("usagelog: write %s: %w", what, err)
}
