package usagelog

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/hubexport/hubexport/internal/export"
)

// strictXLSX is a workbook of three data sheets and a summary, as a file.
func strictXLSX(t *testing.T, rows []export.UsageRow) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := NewXLSX(&buf, Options{Lang: export.HeaderLangEN, Location: mustZone(t, "Asia/Shanghai")})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	enc.perSheet = 4
	for i := range rows {
		if err := enc.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Finish(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A reader that trusts a sheet's <dimension> reads only the range it
// declares: the element must be absent or cover every cell.
func TestXLSXDimensionCoversTheCells(t *testing.T) {
	t.Parallel()
	out := strictXLSX(t, xlsxRows(10, 5*time.Hour))
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	sheets := 0
	for _, zf := range zr.File {
		if !strings.HasPrefix(zf.Name, "xl/worksheets/sheet") {
			continue
		}
		sheets++
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		dim, used := sheetRanges(t, rc)
		rc.Close()
		if used == "" {
			t.Errorf("%s has no cells", zf.Name)
		}
		if dim != "" && dim != used {
			t.Errorf("%s declares <dimension ref=%q>, but its cells span %s", zf.Name, dim, used)
		}
	}
	if sheets != 4 {
		t.Errorf("%d worksheets, want 4", sheets)
	}
}

// sheetRanges reads a worksheet part: the ref its <dimension> declares
// ("" when it has none) and the range its cells span.
func sheetRanges(t *testing.T, r io.Reader) (dim, used string) {
	t.Helper()
	dec := xml.NewDecoder(r)
	minC, minR, maxC, maxR := 1<<30, 1<<30, 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		for _, a := range se.Attr {
			switch {
			case se.Name.Local == "dimension" && a.Name.Local == "ref":
				dim = a.Value
			case se.Name.Local == "c" && a.Name.Local == "r":
				c, r, err := excelize.CellNameToCoordinates(a.Value)
				if err != nil {
					t.Fatal(err)
				}
				minC, minR, maxC, maxR = min(minC, c), min(minR, r), max(maxC, c), max(maxR, r)
			}
		}
	}
	if maxR == 0 {
		return dim, ""
	}
	from, _ := excelize.CoordinatesToCellName(minC, minR)
	to, _ := excelize.CoordinatesToCellName(maxC, maxR)
	return dim, from + ":" + to
}

// Zip entries carry the time the file was written, not the zero MS-DOS
// date (shown as 1980-00-00) that unzip and file managers list.
func TestXLSXZipEntriesAreDated(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-2 * time.Second)
	out := strictXLSX(t, xlsxRows(3, time.Minute))
	after := time.Now().Add(2 * time.Second)
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) == 0 {
		t.Fatal("empty archive")
	}
	for _, zf := range zr.File {
		day, month := zf.ModifiedDate&0x1f, zf.ModifiedDate>>5&0xf
		if day == 0 || month == 0 {
			t.Errorf("%s: MS-DOS date %#x has day %d month %d", zf.Name, zf.ModifiedDate, day, month)
		}
		if zf.Modified.Before(before) || zf.Modified.After(after) {
			t.Errorf("%s: dated %v, want between %v and %v", zf.Name, zf.Modified, before, after)
		}
		if zf.Method != zip.Deflate {
			t.Errorf("%s: method %d, want deflate", zf.Name, zf.Method)
		}
	}
}

// openpyxlPython is a Python that has openpyxl (Debian: python3-openpyxl).
func openpyxlPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import openpyxl").Run() == nil {
			return path
		}
		tried = append(tried, path)
	}
	t.Fatalf("no python3 with openpyxl (tried %v): install Debian's python3-openpyxl", tried)
	return ""
}

// openpyxl in read-only mode is the strict reader: it streams each sheet
// within its declared dimension, as pandas and data pipelines do.
func TestXLSXReadsBackInOpenpyxlReadOnly(t *testing.T) {
	t.Parallel()
	py := openpyxlPython(t)
	rows := xlsxRows(10, 5*time.Hour)
	path := filepath.Join(t.TempDir(), "usage.xlsx")
	if err := os.WriteFile(path, strictXLSX(t, rows), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
out = []
for ws in wb.worksheets:
    rows = [[c if c is None or isinstance(c, (int, float, str)) else str(c) for c in r]
            for r in ws.iter_rows(values_only=True)]
    out.append({"title": ws.title, "rows": rows})
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("openpyxl: %v\n%s", err, stderr.String())
	}
	var sheets []struct {
		Title string
		Rows  [][]any
	}
	if err := json.Unmarshal(raw, &sheets); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	var titles []string
	for _, s := range sheets {
		titles = append(titles, s.Title)
	}
	if got := strings.Join(titles, "|"); got != "Usage Logs|Usage Logs (2)|Usage Logs (3)|Daily Summary" {
		t.Fatalf("sheets %s", got)
	}
	i := 0
	for _, s := range sheets[:3] {
		if len(s.Rows) == 0 || len(s.Rows[0]) != 18 || s.Rows[0][0] != "Time" || s.Rows[0][17] != "Retry Count" {
			t.Fatalf("%s: header %v", s.Title, s.Rows)
		}
		for _, r := range s.Rows[1:] {
			want := rows[i]
			if len(r) != 18 {
				t.Fatalf("%s: data row %d has %d cells: %v", s.Title, i, len(r), r)
			}
			// Times are the export zone's wall clock; numbers are numbers.
			wantTime := want.CreatedAt.In(mustZone(t, "Asia/Shanghai")).Format("2006-01-02 15:04:05")
			if r[0] != wantTime || r[1] != want.User || r[8] != float64(want.InputTokens) || r[16] != nilIfEmpty(want.SessionID) {
				t.Errorf("%s: data row %d reads %v, want time %s, user %q, input %d, session %q",
					s.Title, i, r, wantTime, want.User, want.InputTokens, want.SessionID)
			}
			i++
		}
	}
	if i != len(rows) {
		t.Errorf("openpyxl read %d data rows, want %d", i, len(rows))
	}
	sum := sheets[3].Rows
	if len(sum) < 3 || sum[len(sum)-1][0] != "Total" || sum[len(sum)-1][1] != float64(len(rows)) {
		t.Errorf("summary reads %v, want a total line counting %d requests", sum, len(rows))
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
