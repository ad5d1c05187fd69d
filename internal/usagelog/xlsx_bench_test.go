package usagelog

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// BenchmarkXLSXEncode measures the encoder alone (rows already in memory,
// output discarded): what an XLSX export costs beyond reading the rows.
//
//	go test ./internal/usagelog -run '^$' -bench XLSXEncode -benchmem
func BenchmarkXLSXEncode(b *testing.B) {
	rows := xlsxRows(1000, time.Minute)
	for i := range rows {
		rows[i].CostUSD = "0." + strconv.Itoa(100_000_000_000_000+i*7919) // numeric(_, 15), as CCH stores it
	}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	var out countWriter
	b.ReportAllocs()
	for b.Loop() {
		enc, err := NewXLSX(&out, Options{Lang: export.HeaderLangEN, Location: loc})
		if err != nil {
			b.Fatal(err)
		}
		for range 100 {
			for i := range rows {
				if err := enc.Write(&rows[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := enc.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out)/float64(b.N)/100_000, "B/row")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
