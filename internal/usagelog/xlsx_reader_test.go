package usagelog

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// trickyRows are fixtureRows and one row whose text only an XML writer can
// get wrong: a literal SpreadsheetML escape, a CR, a control character,
// markup characters, edge spaces and text past a cell's 32,767 characters.
func trickyRows() []export.UsageRow {
	rows := fixtureRows()
	r := rows[0]
	r.User = "_x0041_ <b>&amp;</b>"
	r.Key = "a\rb\x01c"
	r.Model = " padded "
	r.SessionID = strings.Repeat("é", 40_000)
	return append(rows, r)
}

// LibreOffice is the second reader the workbook must open in, with what a
// user sees: each sheet as Calc formats it, exported to CSV.
func TestXLSXReadsBackInLibreOffice(t *testing.T) {
	t.Parallel()
	lo, err := exec.LookPath("libreoffice")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("libreoffice is missing: install Debian's libreoffice-calc-nogui (.ci/run does)")
		}
		t.Skip("libreoffice is not installed (Debian: libreoffice-calc-nogui); CI runs this test")
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	enc, err := NewXLSX(&buf, Options{Lang: export.HeaderLangEN, Location: mustZone(t, "Asia/Shanghai")})
	if err != nil {
		t.Fatal(err)
	}
	enc.perSheet = 3
	rows := trickyRows()
	for i := range rows {
		if err := enc.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usage.xlsx"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Comma-separated, UTF-8 (76), values as shown, every sheet (-1) to its own file.
	cmd := exec.Command(lo, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"), "--headless",
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
		"--outdir", dir, filepath.Join(dir, "usage.xlsx"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("libreoffice: %v\n%s", err, out)
	}
	long := strings.Repeat("é", 32_767)
	want := map[string]string{
		"Usage Logs": "Time,User,Key,Provider,Model,Original Model,Endpoint,Status Code,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD),Duration (ms),Session ID,Retry Count\n" +
			"2026-01-29 18:30:00.000,=1+2,\"laptop, work\",Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-20250514,/v1/messages,200,1500,3200,0,0,1200,5900,1.23456789012346,2450,sess_abc123,1\n" +
			"2026-01-29 18:30:00.000,\"Smith, \"\"Jo\"\"\nsecond line\",alice laptop 💻,,claude-haiku-4-5-20251001,claude-haiku-4-5-20251001,/v1/messages,200,0,0,0,0,0,0,0,3,sess_warm,0\n" +
			"2026-01-29 07:00:00.000,  =SUM(A1:A9),@ci,\"=HYPERLINK(\"\"https://evil.example\"\",\"\"点我\"\")\",,,,,10,0,100,200,0,310,0.000123,,,3\n",
		"Usage Logs (2)": "Time,User,Key,Provider,Model,Original Model,Endpoint,Status Code,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD),Duration (ms),Session ID,Retry Count\n" +
			",-rm -rf,+backup,,,,,,1234567890123456,0,0,0,0,1234567890123456,1000000,,,0\n" +
			"2026-01-29 18:30:00.000,_x0041_ <b>&amp;</b>,\"a\rb\uFFFDc\",Anthropic Official, padded ,claude-sonnet-4-20250514,/v1/messages,200,1500,3200,0,0,1200,5900,1.23456789012346,2450," + long + ",1\n",
		"Hourly Summary": "Period,Requests,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD)\n" +
			// Calc shows the "yyyy-mm-dd hh:mm" periods with seconds.
			"2026-01-29 07:00:00,1,10,0,100,200,0,310,0.000123\n" +
			"2026-01-29 18:00:00,3,3000,6400,0,0,2400,11800,2.46913578024691\n" +
			"Total,5,1234567890126466,6400,100,200,2400,1234567890135566,1000002.46925878\n",
	}
	for sheet, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, "usage-"+sheet+".csv"))
		if err != nil {
			t.Errorf("sheet %s: %v", sheet, err)
			continue
		}
		if string(got) != w {
			t.Errorf("sheet %s reads in LibreOffice as\n%.3000s\nwant\n%.3000s", sheet, got, w)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "usage-*.csv")); len(ents) != len(want) {
		t.Errorf("LibreOffice wrote %d sheets, want %d: %v", len(ents), len(want), ents)
	}
}

// The encoder writes nothing but its output: no temporary directory, so
// an export works with TMPDIR pointing at a file, where nothing can be
// created even by root.
func TestXLSXNeedsNoTempDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", file)
	if _, err := os.MkdirTemp("", "probe-"); err == nil {
		t.Fatal("TMPDIR is usable: the test proves nothing")
	}
	var buf bytes.Buffer
	enc, err := NewXLSX(&buf, Options{Lang: export.HeaderLangEN})
	if err != nil {
		t.Fatal(err)
	}
	enc.perSheet = 4
	rows := xlsxRows(10, time.Hour)
	for i := range rows {
		if err := enc.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Finish(); err != nil {
		t.Fatal(err)
	}
	f := openXLSX(t, buf.Bytes())
	if got := strings.Join(f.GetSheetList(), "|"); got != "Usage Logs|Usage Logs (2)|Usage Logs (3)|Hourly Summary" {
		t.Errorf("sheets %s", got)
	}
}

// excelize reads the text cells back as written: escapes, markup, CR and
// edge spaces kept, a control character replaced, overlong text cut to
// what a cell holds.
func TestXLSXTextReadsBackInExcelize(t *testing.T) {
	t.Parallel()
	rows := trickyRows()
	f := openXLSX(t, encode(t, export.FormatXLSX, Options{Lang: export.HeaderLangEN}, rows))
	want := map[string]string{
		"B6": "_x0041_ <b>&amp;</b>", "C6": "a\rb\uFFFDc", "E6": " padded ",
		"Q6": strings.Repeat("é", 32_767), "B3": "Smith, \"Jo\"\nsecond line", "C3": "alice laptop 💻",
	}
	for cell, w := range want {
		if got := cellValue(t, f, "Usage Logs", cell); got != w {
			t.Errorf("%s = %.80q (%d bytes), want %.80q (%d bytes)", cell, got, len(got), w, len(w))
		}
	}
}
