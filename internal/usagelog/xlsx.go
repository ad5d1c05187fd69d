package usagelog

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/xuri/excelize/v2"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/scratch"
)

// MaxSheetRows is how many data rows one sheet holds: Excel's 1,048,576 rows
// less the header. Further rows continue on another sheet.
const MaxSheetRows = 1_048_575

// Number formats of the XLSX cells.
const (
	timeFormat   = "yyyy-mm-dd hh:mm:ss.000"
	costFormat   = "0.00#############" // at least cents, up to the 15 decimals CCH stores
	intFormat    = "0"
	dayFormat    = "yyyy-mm-dd"
	hourFormat   = "yyyy-mm-dd hh:mm"
	headerHeight = 18
)

// XLSX writes a workbook: the rows on "Usage Logs" (continued on "Usage
// Logs (2)" and so on past MaxSheetRows), typed cells, a frozen header row,
// and a last sheet summarising the rows per day, or per hour when they span
// at most a day, with a total line.
//
// Why a temporary file: an XLSX file is a zip archive whose parts are each
// compressed whole, and excelize's StreamWriter keeps a sheet's XML until
// the workbook is written at the end (it must: the summary sheet and the
// workbook's sheet list are only known after the last row). It holds up to
// 16 MiB of a sheet in memory and spills the rest into a temporary file,
// which Finish then compresses into the output. Those files live in a
// directory of this encoder's own that Close removes, whatever happened.
type XLSX struct {
	out  io.Writer
	o    Options
	loc  *time.Location
	dir  *scratch.Dir
	f    *excelize.File
	sw   *excelize.StreamWriter
	rows int // data rows on the current sheet
	nth  int // current data sheet, from 1
	// perSheet is MaxSheetRows; tests lower it.
	perSheet int

	sHeader, sTime, sCost, sInt, sDay, sHour, sTotal, sTotalCost, sTotalInt int

	sum   *summary
	cells []any
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

// TempPrefix starts the name of every XLSX encoder's temporary directory; a
// killed worker's are removed by scratch.Sweep.
const TempPrefix = "hubexport-xlsx-"

// NewXLSX returns the encoder. Its temporary files go to a new directory
// under o.TempDir, locked by this process while the encoder is open.
func NewXLSX(w io.Writer, o Options) (_ *XLSX, err error) {
	dir, err := scratch.MkdirTemp(o.TempDir, TempPrefix)
	if err != nil {
		return nil, fmt.Errorf("usagelog: xlsx temporary directory: %w", err)
	}
	e := &XLSX{
		out: w, o: o, loc: o.loc(), dir: dir,
		f:     excelize.NewFile(excelize.Options{TmpDir: dir.Path}),
		sum:   newSummary(o.loc()),
		cells: make([]any, len(columnsEN)),
		names: namesFor(o.Lang),

		perSheet: MaxSheetRows,
	}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	styles := []struct {
		id *int
		s  excelize.Style
	}{
		{&e.sHeader, excelize.Style{Font: &excelize.Font{Bold: true}}},
		{&e.sTime, excelize.Style{CustomNumFmt: ptr(timeFormat)}},
		{&e.sCost, excelize.Style{CustomNumFmt: ptr(costFormat)}},
		{&e.sInt, excelize.Style{NumFmt: 1}}, // "0"
		{&e.sDay, excelize.Style{CustomNumFmt: ptr(dayFormat)}},
		{&e.sHour, excelize.Style{CustomNumFmt: ptr(hourFormat)}},
		{&e.sTotal, excelize.Style{Font: &excelize.Font{Bold: true}}},
		{&e.sTotalCost, excelize.Style{Font: &excelize.Font{Bold: true}, CustomNumFmt: ptr(costFormat)}},
		{&e.sTotalInt, excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: 1}},
	}
	for _, s := range styles {
		if *s.id, err = e.f.NewStyle(&s.s); err != nil {
			return nil, fmt.Errorf("usagelog: xlsx style: %w", err)
		}
	}
	if err := e.f.SetSheetName(e.f.GetSheetName(0), e.names.data); err != nil {
		return nil, fmt.Errorf("usagelog: xlsx sheet: %w", err)
	}
	e.nth = 1
	if err := e.startDataSheet(e.names.data, nil); err != nil {
		return nil, err
	}
	return e, nil
}

func ptr[T any](v T) *T { return &v }

// dataSheetName is the name of the nth data sheet.
func (e *XLSX) dataSheetName(n int) string {
	if n == 1 {
		return e.names.data
	}
	return e.names.data + " (" + strconv.Itoa(n) + ")"
}

// startDataSheet opens a stream on sheet name (which must exist) and writes
// the column widths, the frozen pane and the header row. prev is the sheet
// before it, already flushed, or nil.
func (e *XLSX) startDataSheet(name string, prev *excelize.StreamWriter) error {
	sw, err := newStream(e.f, name)
	if err != nil {
		return fmt.Errorf("usagelog: xlsx stream: %w", err)
	}
	sheetBuffer(sw, prev)
	widths := [18]float64{24, 16, 16, 18, 26, 26, 24, 8, 12, 12, 12, 12, 12, 12, 14, 12, 36, 8}
	for i, w := range widths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return fmt.Errorf("usagelog: xlsx column width: %w", err)
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("usagelog: xlsx panes: %w", err)
	}
	header := make([]any, len(columnsEN))
	for i, h := range Columns(e.o.Lang) {
		header[i] = excelize.Cell{StyleID: e.sHeader, Value: h}
	}
	if err := sw.SetRow("A1", header, excelize.RowOpts{Height: headerHeight}); err != nil {
		return fmt.Errorf("usagelog: xlsx header: %w", err)
	}
	e.sw, e.rows = sw, 0
	return nil
}

// newStream opens a stream on sheet name without a <dimension> element.
// A stream writes the sheet's start before its rows, so the only range it
// could declare is excelize's default "A1", and readers that trust the
// element (openpyxl in read-only mode, pandas through it) then see one cell.
// The element is optional; without it readers look at the cells.
func newStream(f *excelize.File, name string) (*excelize.StreamWriter, error) {
	if err := f.SetSheetDimension(name, ""); err != nil {
		return nil, err
	}
	return f.NewStreamWriter(name)
}

// Write implements Encoder.
func (e *XLSX) Write(r *export.UsageRow) error {
	if e.rows == e.perSheet {
		if err := e.sw.Flush(); err != nil {
			return fmt.Errorf("usagelog: xlsx flush sheet: %w", err)
		}
		e.nth++
		name := e.dataSheetName(e.nth)
		if _, err := e.f.NewSheet(name); err != nil {
			return fmt.Errorf("usagelog: xlsx sheet: %w", err)
		}
		if err := e.startDataSheet(name, e.sw); err != nil {
			return err
		}
	}
	e.sum.add(r)
	c := e.cells
	clear(c)
	if !r.CreatedAt.IsZero() {
		c[0] = excelize.Cell{StyleID: e.sTime, Value: wallClock(r.CreatedAt, e.loc)}
	}
	c[1], c[2] = r.User, r.Key
	if r.Provider != nil {
		c[3] = *r.Provider
	}
	c[4], c[5], c[6] = r.Model, r.OriginalModel, r.Endpoint
	if r.StatusCode != nil {
		c[7] = *r.StatusCode
	}
	c[8] = excelize.Cell{StyleID: e.sInt, Value: r.InputTokens}
	c[9] = excelize.Cell{StyleID: e.sInt, Value: r.OutputTokens}
	c[10] = excelize.Cell{StyleID: e.sInt, Value: r.CacheWrite5m}
	c[11] = excelize.Cell{StyleID: e.sInt, Value: r.CacheWrite1h}
	c[12] = excelize.Cell{StyleID: e.sInt, Value: r.CacheRead}
	c[13] = excelize.Cell{StyleID: e.sInt, Value: r.TotalTokens}
	if f, ok := costNumber(r.CostUSD); ok {
		c[14] = excelize.Cell{StyleID: e.sCost, Value: f}
	} else {
		c[14] = r.CostUSD
	}
	if r.DurationMs != nil {
		c[15] = *r.DurationMs
	}
	c[16] = r.SessionID
	c[17] = r.RetryCount
	for i := 1; i <= 6; i++ {
		if s, ok := c[i].(string); ok && s == "" {
			c[i] = nil // an empty cell, not an empty string
		}
	}
	if r.SessionID == "" {
		c[16] = nil
	}
	e.rows++
	if err := e.sw.SetRow("A"+strconv.Itoa(e.rows+1), c); err != nil {
		return fmt.Errorf("usagelog: xlsx row: %w", err)
	}
	return nil
}

// wallClock is t's wall clock in loc as a UTC time: a spreadsheet cell has
// no zone, so it shows the time as the export's zone reads it.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// costNumber is the cost as the number a spreadsheet stores: the exact
// decimal rounded to 15 significant digits first, so the float is that
// decimal's nearest (15 digits always survive a float64 round trip).
func costNumber(s string) (float64, bool) {
	var tmp [48]byte
	b, ok := appendDecimal(tmp[:0], s)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}

// Finish implements Encoder: it ends the last data sheet, writes the
// summary sheet and compresses the workbook into the output.
func (e *XLSX) Finish() error {
	if err := e.sw.Flush(); err != nil {
		return fmt.Errorf("usagelog: xlsx flush sheet: %w", err)
	}
	releaseStreamBuffer(e.sw)
	if err := e.writeSummary(); err != nil {
		return err
	}
	e.f.SetActiveSheet(0)
	// excelize's Write builds the whole archive in a bytes.Buffer before
	// copying it out, which would hold the compressed workbook in memory.
	// Its zip writer hook lets the archive go straight to the output
	// instead; the buffer then stays empty. (excelize patches that buffer
	// only for parts over 4 GiB, which a sheet of at most 1,048,576 rows
	// does not reach.)
	var zw *datedZip
	e.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw = &datedZip{Writer: zip.NewWriter(e.out), modified: time.Now().In(e.loc)}
		return zw
	})
	if err := e.f.Write(io.Discard); err != nil {
		return writeErr("xlsx", err)
	}
	if zw == nil {
		return fmt.Errorf("usagelog: xlsx: excelize did not use the zip writer hook")
	}
	return nil
}

// datedZip dates every entry with the time the workbook is written (as a
// wall clock in the export's zone, plus the UTC time in the extended field).
// zip.Writer.Create leaves the date zero, which unzip and file managers
// show as 1980-00-00.
type datedZip struct {
	*zip.Writer
	modified time.Time
}

func (z *datedZip) Create(name string) (io.Writer, error) {
	return z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.modified})
}

func (e *XLSX) writeSummary() error {
	lines, hourly := e.sum.lines()
	name, periodStyle := e.names.daily, e.sDay
	if hourly {
		name, periodStyle = e.names.hourly, e.sHour
	}
	if _, err := e.f.NewSheet(name); err != nil {
		return fmt.Errorf("usagelog: xlsx summary sheet: %w", err)
	}
	sw, err := newStream(e.f, name)
	if err != nil {
		return fmt.Errorf("usagelog: xlsx summary stream: %w", err)
	}
	cols := Columns(e.o.Lang)
	if err := sw.SetColWidth(1, 1, 18); err != nil {
		return fmt.Errorf("usagelog: xlsx column width: %w", err)
	}
	if err := sw.SetColWidth(2, 9, 14); err != nil {
		return fmt.Errorf("usagelog: xlsx column width: %w", err)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("usagelog: xlsx panes: %w", err)
	}
	header := []any{e.names.period, e.names.requests, cols[8], cols[9], cols[10], cols[11], cols[12], cols[13], cols[14]}
	for i, h := range header {
		header[i] = excelize.Cell{StyleID: e.sHeader, Value: h}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return fmt.Errorf("usagelog: xlsx summary header: %w", err)
	}
	row := 1
	line := func(first any, t *tally, intStyle, costStyle int) error {
		cells := []any{first,
			excelize.Cell{StyleID: intStyle, Value: t.Requests},
			excelize.Cell{StyleID: intStyle, Value: t.InputTokens},
			excelize.Cell{StyleID: intStyle, Value: t.OutputTokens},
			excelize.Cell{StyleID: intStyle, Value: t.CacheWrite5m},
			excelize.Cell{StyleID: intStyle, Value: t.CacheWrite1h},
			excelize.Cell{StyleID: intStyle, Value: t.CacheRead},
			excelize.Cell{StyleID: intStyle, Value: t.TotalTokens},
		}
		if f, ok := costNumber(t.Cost.String()); ok {
			cells = append(cells, excelize.Cell{StyleID: costStyle, Value: f})
		}
		row++
		if err := sw.SetRow("A"+strconv.Itoa(row), cells); err != nil {
			return fmt.Errorf("usagelog: xlsx summary row: %w", err)
		}
		return nil
	}
	for _, l := range lines {
		if err := line(excelize.Cell{StyleID: periodStyle, Value: l.Start}, l.tally, e.sInt, e.sCost); err != nil {
			return err
		}
	}
	if err := line(excelize.Cell{StyleID: e.sTotal, Value: e.names.total}, &e.sum.total, e.sTotalInt, e.sTotalCost); err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("usagelog: xlsx flush summary: %w", err)
	}
	return nil
}

// Close implements Encoder: it removes the temporary files.
func (e *XLSX) Close() error {
	err := e.f.Close()
	if rerr := e.dir.Remove(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("usagelog: xlsx cleanup: %w", err)
	}
	return nil
}

// streamBuffer reaches into excelize's StreamWriter for the in-memory buffer
// it keeps a sheet's XML in (v2.11.1: StreamWriter.rawData.buf), or returns
// nil when the layout is not the expected one, which only costs memory.
//
// Why: excelize keeps up to 16 MiB of each sheet in that buffer and never
// frees it until the whole workbook is closed, even once the sheet has been
// written to its temporary file. With one sheet per 1,048,575 rows, a large
// export would hold 16 to 32 MiB per finished sheet, and no public API lets
// go of it. TestStreamBufferLayout fails when an excelize upgrade moves it.
func streamBuffer(sw *excelize.StreamWriter) *bytes.Buffer {
	raw := reflect.ValueOf(sw).Elem().FieldByName("rawData")
	if !raw.IsValid() || raw.Kind() != reflect.Struct {
		return nil
	}
	buf := raw.FieldByName("buf")
	if !buf.IsValid() || buf.Type() != reflect.TypeFor[bytes.Buffer]() {
		return nil
	}
	return (*bytes.Buffer)(unsafe.Pointer(buf.UnsafeAddr()))
}

// sheetChunk is what a sheet's buffer must hold: excelize spills it into the
// temporary file once it passes StreamChunkSize, after a whole row.
const sheetChunk = excelize.StreamChunkSize + 1<<20

// sheetBuffer sizes the buffer of the new sheet stream next once for what
// excelize holds before it spills, so it does not double past it (to 32 MiB)
// on the row that crosses 16 MiB. It takes over the buffer of prev, the
// finished sheet before it, when excelize has moved all of prev into its
// temporary file, rather than allocate another: a finished sheet's buffer
// is dead weight.
func sheetBuffer(next, prev *excelize.StreamWriter) {
	nb := streamBuffer(next)
	if nb == nil {
		return
	}
	if prev != nil {
		if pb := streamBuffer(prev); pb != nil && pb.Len() == 0 && pb.Cap() >= sheetChunk {
			pb.Write(nb.Bytes()) // what NewStreamWriter wrote so far
			*nb, *pb = *pb, bytes.Buffer{}
			return
		}
	}
	nb.Grow(sheetChunk)
}

// releaseStreamBuffer frees a flushed sheet's buffer when excelize has moved
// everything into the sheet's temporary file (the buffer is empty then); a
// sheet small enough to have stayed in memory keeps it.
func releaseStreamBuffer(sw *excelize.StreamWriter) {
	if buf := streamBuffer(sw); buf != nil && buf.Len() == 0 {
		*buf = bytes.Buffer{}
	}
}
