package usagelog

import (
	"archive/zip"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/hubexport/hubexport/internal/export"
)

// MaxSheetRows is how many data rows one sheet holds: Excel's 1,048,576 rows
// less the header. Further rows continue on another sheet.
const MaxSheetRows = 1_048_575

// Number formats of the XLSX cells.
const (
	timeFormat = "yyyy-mm-dd hh:mm:ss.000"
	costFormat = "0.00#############" // at least cents, up to the 15 decimals CCH stores
	dayFormat  = "yyyy-mm-dd"
	hourFormat = "yyyy-mm-dd hh:mm"
)

// XLSX writes a workbook: the rows on "Usage Logs" (continued on "Usage
// Logs (2)" and so on past MaxSheetRows), typed cells, a frozen header row,
// and a last sheet summarising the rows per day, or per hour when they span
// at most a day, with a total line.
//
// An XLSX file is a zip archive whose parts may come in any order, so each
// sheet's XML is deflated into the output as its rows arrive, and the parts
// that depend on the whole export (the summary sheet, the workbook's sheet
// list, the content types) follow the last row. Nothing is kept but the
// compressor's window and the summary's hourly sums: no temporary file, and
// memory that does not grow with the rows.
type XLSX struct {
	zw  *zip.Writer
	sh  io.Writer // the open sheet part
	o   Options
	loc *time.Location
	// modified dates every zip entry: the time the export started, as a
	// wall clock in the export's zone (zip.Writer.Create would leave the
	// MS-DOS date zero, which unzip and file managers show as 1980-00-00).
	modified time.Time
	buf      []byte // XML not yet handed to the compressor
	rows     int    // data rows on the current sheet
	sheets   []string
	// perSheet is MaxSheetRows; tests lower it.
	perSheet int

	sum   *summary
	names xlsxNames
}

type xlsxNames struct {
	data, daily, hourly, period, requests, total string
}

func namesFor(lang string) xlsxNames {
	if lang == export.HeaderLangEN {
		return xlsxNames{"Usage Logs", "Daily Summary", "Hourly Summary", "Period", "Requests", "Total"}
	}
	return xlsxNames{"使用记录", "每日汇总", "每小时汇总", "时段", "请求数", "合计"}
}

// flushAt is how much sheet XML gathers before it goes to the compressor:
// one call per many rows rather than per row.
const flushAt = 64 << 10

// compressLevel trades size for speed. Deflate is the largest part of an
// XLSX export's CPU time: a sheet's XML is about 730 bytes a row, and
// compress/flate at archive/zip's default level deflates about 85 MB/s, so
// the compressor, not the database, set the pace. klauspost/compress's
// fastest level deflates the same XML about five times as fast (1.5 times
// compress/flate's own fastest) to about a seventh of its size.
const compressLevel = flate.BestSpeed

// NewXLSX returns the encoder; it writes the first sheet's start to w.
func NewXLSX(w io.Writer, o Options) (*XLSX, error) {
	e := &XLSX{
		zw: zip.NewWriter(w), o: o, loc: o.loc(),
		modified: time.Now().In(o.loc()),
		buf:      make([]byte, 0, flushAt+8<<10),
		sum:      newSummary(o.loc()),
		names:    namesFor(o.Lang),
		perSheet: MaxSheetRows,
	}
	e.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, compressLevel)
	})
	if err := e.startDataSheet(); err != nil {
		return nil, err
	}
	return e, nil
}

// Cell styles: indexes into styles.xml's cellXfs.
const (
	styleHeader    = 1 // bold; also the summary's total label
	styleTime      = 2
	styleCost      = 3
	styleInt       = 4
	styleDay       = 5
	styleHour      = 6
	styleTotalCost = 7
	styleTotalInt  = 8
)

var dataWidths = [18]int{24, 16, 16, 18, 26, 26, 24, 8, 12, 12, 12, 12, 12, 12, 14, 12, 36, 8}

// startPart opens the zip entry name.
func (e *XLSX) startPart(name string) (io.Writer, error) {
	w, err := e.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: e.modified})
	if err != nil {
		return nil, writeErr("xlsx "+name, err)
	}
	return w, nil
}

// startSheet opens the next worksheet part named name and writes its start:
// the frozen header pane, the column widths, and the header row. There is
// no <dimension>: the rows are not known yet, and readers that trust the
// element (openpyxl in read-only mode, pandas through it) would read only
// the range it declared. Without it, they look at the cells.
func (e *XLSX) startSheet(name string, widths []int, header []string, headerHeight bool) error {
	sh, err := e.startPart("xl/worksheets/sheet" + strconv.Itoa(len(e.sheets)+1) + ".xml")
	if err != nil {
		return err
	}
	e.sh = sh
	e.sheets = append(e.sheets, name)
	b := append(e.buf[:0], xmlHeader...)
	b = append(b, `<worksheet xmlns="`+nsMain+`" xmlns:r="`+nsRel+`"><sheetViews><sheetView `...)
	if len(e.sheets) == 1 {
		b = append(b, `tabSelected="1" `...)
	}
	b = append(b, `workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>`...)
	for i := 0; i < len(widths); {
		j := i
		for j+1 < len(widths) && widths[j+1] == widths[i] {
			j++
		}
		b = append(b, `<col min="`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `" max="`...)
		b = strconv.AppendInt(b, int64(j+1), 10)
		b = append(b, `" width="`...)
		b = strconv.AppendInt(b, int64(widths[i]), 10)
		b = append(b, `" customWidth="1"/>`...)
		i = j + 1
	}
	b = append(b, `</cols><sheetData><row r="1"`...)
	if headerHeight {
		b = append(b, ` ht="18" customHeight="1"`...)
	}
	b = append(b, '>')
	for i, h := range header {
		b = appendStringCell(b, i, 1, styleHeader, h)
	}
	e.buf = append(b, `</row>`...)
	e.rows = 0
	return nil
}

func (e *XLSX) startDataSheet() error {
	name := e.names.data
	if n := len(e.sheets) + 1; n > 1 {
		name += " (" + strconv.Itoa(n) + ")"
	}
	return e.startSheet(name, dataWidths[:], Columns(e.o.Lang), true)
}

// endSheet ends the open worksheet part.
func (e *XLSX) endSheet() error {
	e.buf = append(e.buf, `</sheetData></worksheet>`...)
	return e.flush()
}

func (e *XLSX) flush() error {
	if _, err := e.sh.Write(e.buf); err != nil {
		return writeErr("xlsx sheet", err)
	}
	e.buf = e.buf[:0]
	return nil
}

// Write implements Encoder.
func (e *XLSX) Write(r *export.UsageRow) error {
	if e.rows == e.perSheet {
		if err := e.endSheet(); err != nil {
			return err
		}
		if err := e.startDataSheet(); err != nil {
			return err
		}
	}
	e.sum.add(r)
	e.rows++
	n := e.rows + 1
	b := append(e.buf, `<row r="`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `">`...)
	if !r.CreatedAt.IsZero() {
		b = appendTimeCell(b, 0, n, styleTime, wallClock(r.CreatedAt, e.loc))
	}
	b = appendStringCell(b, 1, n, 0, r.User)
	b = appendStringCell(b, 2, n, 0, r.Key)
	if r.Provider != nil {
		b = appendStringCell(b, 3, n, 0, *r.Provider)
	}
	b = appendStringCell(b, 4, n, 0, r.Model)
	b = appendStringCell(b, 5, n, 0, r.OriginalModel)
	b = appendStringCell(b, 6, n, 0, r.Endpoint)
	if r.StatusCode != nil {
		b = appendIntCell(b, 7, n, 0, *r.StatusCode)
	}
	b = appendIntCell(b, 8, n, styleInt, r.InputTokens)
	b = appendIntCell(b, 9, n, styleInt, r.OutputTokens)
	b = appendIntCell(b, 10, n, styleInt, r.CacheWrite5m)
	b = appendIntCell(b, 11, n, styleInt, r.CacheWrite1h)
	b = appendIntCell(b, 12, n, styleInt, r.CacheRead)
	b = appendIntCell(b, 13, n, styleInt, r.TotalTokens)
	b = appendCostCell(b, 14, n, styleCost, r.CostUSD)
	if r.DurationMs != nil {
		b = appendIntCell(b, 15, n, 0, *r.DurationMs)
	}
	b = appendStringCell(b, 16, n, 0, r.SessionID)
	b = appendIntCell(b, 17, n, 0, r.RetryCount)
	e.buf = append(b, `</row>`...)
	if len(e.buf) >= flushAt {
		return e.flush()
	}
	return nil
}

// wallClock is t's wall clock in loc as a UTC time: a spreadsheet cell has
// no zone, so it shows the time as the export's zone reads it.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// Finish implements Encoder: it ends the last data sheet and writes the
// summary sheet and the parts that list the sheets.
func (e *XLSX) Finish() error {
	if err := e.endSheet(); err != nil {
		return err
	}
	if err := e.writeSummary(); err != nil {
		return err
	}
	parts := []struct {
		name string
		body []byte
	}{
		{"xl/workbook.xml", e.workbookXML()},
		{"xl/_rels/workbook.xml.rels", e.workbookRels()},
		{"xl/styles.xml", []byte(stylesXML)},
		{"_rels/.rels", []byte(rootRels)},
		{"[Content_Types].xml", e.contentTypes()},
	}
	for _, p := range parts {
		w, err := e.startPart(p.name)
		if err != nil {
			return err
		}
		if _, err := w.Write(p.body); err != nil {
			return writeErr("xlsx "+p.name, err)
		}
	}
	if err := e.zw.Close(); err != nil {
		return writeErr("xlsx", err)
	}
	return nil
}

func (e *XLSX) writeSummary() error {
	lines, hourly := e.sum.lines()
	name, periodStyle := e.names.daily, styleDay
	if hourly {
		name, periodStyle = e.names.hourly, styleHour
	}
	cols := Columns(e.o.Lang)
	header := []string{e.names.period, e.names.requests, cols[8], cols[9], cols[10], cols[11], cols[12], cols[13], cols[14]}
	if err := e.startSheet(name, []int{18, 14, 14, 14, 14, 14, 14, 14, 14}, header, false); err != nil {
		return err
	}
	line := func(b []byte, n int, t *tally, intStyle, costStyle int) []byte {
		for i, v := range [...]int64{t.Requests, t.InputTokens, t.OutputTokens, t.CacheWrite5m, t.CacheWrite1h, t.CacheRead, t.TotalTokens} {
			b = appendIntCell(b, 1+i, n, intStyle, v)
		}
		b = appendCostCell(b, 8, n, costStyle, t.Cost.String())
		return append(b, `</row>`...)
	}
	b := e.buf
	n := 1
	for _, l := range lines {
		n++
		b = appendRowStart(b, n)
		b = appendTimeCell(b, 0, n, periodStyle, l.Start)
		b = line(b, n, l.tally, styleInt, styleCost)
	}
	n++
	b = appendRowStart(b, n)
	b = appendStringCell(b, 0, n, styleHeader, e.names.total)
	e.buf = line(b, n, &e.sum.total, styleTotalInt, styleTotalCost)
	return e.endSheet()
}

func appendRowStart(b []byte, n int) []byte {
	b = append(b, `<row r="`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, `">`...)
}

// Close implements Encoder. The encoder holds nothing outside memory: an
// unfinished workbook is simply abandoned (the caller discards the output).
func (e *XLSX) Close() error { return nil }
