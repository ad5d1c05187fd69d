package usagelog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/hubexport/hubexport/internal/export"
)

func i64(v int64) *int64   { return &v }
func str(s string) *string { return &s }

// fixtureRows cover every kind of cell: a formula-like and a quoted
// multi-line name, no provider, no status or duration, a warmup's zero
// cost, a cost past 15 significant digits, a row without a time.
func fixtureRows() []export.UsageRow {
	return []export.UsageRow{
		{
			ID: 3, CreatedAt: time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC),
			UserID: 7, User: "=1+2", KeyID: i64(12), Key: "laptop, work", ProviderID: 2, Provider: str("Anthropic Official"),
			Model: "claude-sonnet-4-5-20250929", OriginalModel: "claude-sonnet-4-20250514", Endpoint: "/v1/messages",
			StatusCode: i64(200), InputTokens: 1500, OutputTokens: 3200, CacheWrite5m: 0, CacheWrite1h: 0, CacheRead: 1200,
			TotalTokens: 5900, CostUSD: "1.234567890123456", DurationMs: i64(2450), SessionID: "sess_abc123", RetryCount: 1,
		},
		{
			ID: 2, CreatedAt: time.Date(2026, 1, 29, 10, 29, 59, 999_999_000, time.UTC),
			UserID: 8, User: "Smith, \"Jo\"\nsecond line", KeyID: i64(13), Key: "alice laptop 💻",
			Model: "claude-haiku-4-5-20251001", OriginalModel: "claude-haiku-4-5-20251001", Endpoint: "/v1/messages",
			StatusCode: i64(200), CostUSD: "0", DurationMs: i64(3), SessionID: "sess_warm", RetryCount: 0,
		},
		{
			ID: 1, CreatedAt: time.Date(2026, 1, 28, 23, 0, 0, 0, time.UTC),
			UserID: 7, User: "  =SUM(A1:A9)", Key: "@ci", ProviderID: 9, Provider: str(`=HYPERLINK("https://evil.example","点我")`),
			Model: "", OriginalModel: "", Endpoint: "",
			InputTokens: 10, OutputTokens: 0, CacheWrite5m: 100, CacheWrite1h: 200, CacheRead: 0, TotalTokens: 310,
			CostUSD: "0.000123000000000", SessionID: "", RetryCount: 3,
		},
		{
			ID: 0, UserID: 1, User: "-rm -rf", Key: "+backup", CostUSD: "999999.999999999999999",
			InputTokens: 1_234_567_890_123_456, TotalTokens: 1_234_567_890_123_456,
		},
	}
}

const wantHeaderZH = "\uFEFF时间,用户,密钥,供应商,模型,原始模型,端点,状态码,输入 Token,输出 Token,缓存写入 5m,缓存写入 1h,缓存读取,总 Token,成本(USD),耗时(ms),Session ID,重试次数\n"
const wantHeaderEN = "\uFEFFTime,User,Key,Provider,Model,Original Model,Endpoint,Status Code,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD),Duration (ms),Session ID,Retry Count\n"

const wantBodyUTC = "2026-01-29T10:30:00.000Z,'=1+2,\"laptop, work\",Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-20250514,/v1/messages,200,1500,3200,0,0,1200,5900,1.23456789012346,2450,sess_abc123,1\n" +
	"2026-01-29T10:29:59.999Z,\"Smith, \"\"Jo\"\"\nsecond line\",alice laptop 💻,,claude-haiku-4-5-20251001,claude-haiku-4-5-20251001,/v1/messages,200,0,0,0,0,0,0,0,3,sess_warm,0\n" +
	"2026-01-28T23:00:00.000Z,'  =SUM(A1:A9),'@ci,\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"点我\"\")\",,,,,10,0,100,200,0,310,0.000123,,,3\n" +
	",'-rm -rf,'+backup,,,,,,1234567890123460,0,0,0,0,1234567890123460,1000000,,,0\n"

const wantBodyShanghai = "2026-01-29T18:30:00.000+08:00,'=1+2,\"laptop, work\",Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-20250514,/v1/messages,200,1500,3200,0,0,1200,5900,1.23456789012346,2450,sess_abc123,1\n" +
	"2026-01-29T18:29:59.999+08:00,\"Smith, \"\"Jo\"\"\nsecond line\",alice laptop 💻,,claude-haiku-4-5-20251001,claude-haiku-4-5-20251001,/v1/messages,200,0,0,0,0,0,0,0,3,sess_warm,0\n" +
	"2026-01-29T07:00:00.000+08:00,'  =SUM(A1:A9),'@ci,\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"点我\"\")\",,,,,10,0,100,200,0,310,0.000123,,,3\n" +
	",'-rm -rf,'+backup,,,,,,1234567890123460,0,0,0,0,1234567890123460,1000000,,,0\n"

func encode(t *testing.T, f export.Format, o Options, rows []export.UsageRow) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := New(f, &buf, o)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for i := range rows {
		if err := enc.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCSVBytes(t *testing.T) {
	t.Parallel()
	shanghai := mustZone(t, "Asia/Shanghai")
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"zh UTC (defaults)", Options{}, wantHeaderZH + wantBodyUTC},
		{"en UTC", Options{Lang: export.HeaderLangEN, Location: time.UTC}, wantHeaderEN + wantBodyUTC},
		{"zh Shanghai", Options{Lang: export.HeaderLangZH, Location: shanghai}, wantHeaderZH + wantBodyShanghai},
		{"en Shanghai", Options{Lang: export.HeaderLangEN, Location: shanghai}, wantHeaderEN + wantBodyShanghai},
	}
	for _, c := range cases {
		got := encode(t, export.FormatCSV, c.o, fixtureRows())
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if got := encode(t, export.FormatCSV, Options{}, nil); string(got) != wantHeaderZH {
		t.Errorf("no rows: %q, want the header alone", got)
	}
}

func TestCSVGzipIsTheCSV(t *testing.T) {
	t.Parallel()
	o := Options{Lang: export.HeaderLangEN, Location: mustZone(t, "Asia/Shanghai")}
	plain := encode(t, export.FormatCSV, o, fixtureRows())
	gz := encode(t, export.FormatCSVGz, o, fixtureRows())
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("gunzipped %q\nwant %q", got, plain)
	}
	if again := encode(t, export.FormatCSVGz, o, fixtureRows()); !bytes.Equal(again, gz) {
		t.Error("the same rows gave different gzip bytes")
	}
}

func TestJSONLReadsBack(t *testing.T) {
	t.Parallel()
	rows := fixtureRows()
	rows = append(rows, export.UsageRow{ID: 9, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		User: "bad \xff utf8", Key: "k", CostUSD: "NaN", SessionID: "\u2028"})
	loc := mustZone(t, "Asia/Shanghai")
	out := encode(t, export.FormatJSONL, Options{Location: loc}, rows)
	sc := bufio.NewScanner(bytes.NewReader(out))
	var n int
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d %q: %v", n+1, sc.Bytes(), err)
		}
		if len(raw) != 22 {
			t.Errorf("line %d has %d keys, want the 18 columns and 4 ids", n+1, len(raw))
		}
		if !bytes.HasPrefix(sc.Bytes(), []byte(`{"id":`)) {
			t.Errorf("line %d %q does not start with the id", n+1, sc.Bytes())
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var got JSONLRow
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		want := rows[n]
		back := export.UsageRow{
			ID: got.ID, UserID: got.UserID, User: got.User, KeyID: got.KeyID, Key: got.Key,
			ProviderID: got.ProviderID, Provider: got.Provider, Model: deref(got.Model),
			OriginalModel: deref(got.OriginalModel), Endpoint: deref(got.Endpoint), StatusCode: got.StatusCode,
			InputTokens: got.InputTokens, OutputTokens: got.OutputTokens, CacheWrite5m: got.CacheWrite5m,
			CacheWrite1h: got.CacheWrite1h, CacheRead: got.CacheRead, TotalTokens: got.TotalTokens,
			CostUSD: got.CostUSD, DurationMs: got.DurationMs, SessionID: deref(got.SessionID), RetryCount: got.RetryCount,
		}
		if got.Time != nil {
			tm, err := time.Parse(time.RFC3339Nano, *got.Time)
			if err != nil {
				t.Errorf("line %d: time %q is not RFC 3339: %v", n+1, *got.Time, err)
			}
			back.CreatedAt = tm
			if !strings.HasSuffix(*got.Time, "+08:00") {
				t.Errorf("line %d: time %q not in the export's zone", n+1, *got.Time)
			}
		}
		// The cost is the exact decimal, trailing zeros aside; text that is
		// not a number is passed through.
		if x, ok := new(big.Rat).SetString(want.CostUSD); ok {
			y, ok := new(big.Rat).SetString(got.CostUSD)
			if !ok || x.Cmp(y) != 0 {
				t.Errorf("line %d: cost %q, want the value of %q", n+1, got.CostUSD, want.CostUSD)
			}
			back.CostUSD = want.CostUSD
		}
		if strings.ToValidUTF8(want.User, "\uFFFD") == back.User {
			back.User = want.User
		}
		if !back.CreatedAt.Equal(want.CreatedAt.Truncate(time.Millisecond)) {
			t.Errorf("line %d: time %v, want %v", n+1, back.CreatedAt, want.CreatedAt)
		}
		back.CreatedAt = want.CreatedAt
		if !equalRows(back, want) {
			t.Errorf("line %d reads back as\n%+v\nwant\n%+v", n+1, back, want)
		}
		for _, k := range []string{"id", "user_id", "key_id", "provider_id", "status_code", "duration_ms", "input_tokens", "retry_count"} {
			if v := string(raw[k]); v != "null" && strings.HasPrefix(v, `"`) {
				t.Errorf("line %d: %s is %s, want a number", n+1, k, v)
			}
		}
		if !strings.HasPrefix(string(raw["cost_usd"]), `"`) {
			t.Errorf("line %d: cost_usd %s is not a string", n+1, raw["cost_usd"])
		}
		n++
	}
	if n != len(rows) {
		t.Errorf("%d lines, want %d", n, len(rows))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func equalRows(a, b export.UsageRow) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// xlsxRows makes n rows an hour apart (or a minute apart when short).
func xlsxRows(n int, step time.Duration) []export.UsageRow {
	base := fixtureRows()
	start := time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)
	out := make([]export.UsageRow, n)
	for i := range out {
		r := base[i%3]
		r.ID = int64(n - i)
		r.CreatedAt = start.Add(-time.Duration(i) * step)
		r.InputTokens = int64(i * 7)
		r.TotalTokens = r.InputTokens + r.OutputTokens + r.CacheRead + r.CacheWrite5m + r.CacheWrite1h
		r.CostUSD = "0." + strings.Repeat("0", i%5) + strconv.Itoa(123456789+i) + "987654"
		out[i] = r
	}
	return out
}

func openXLSX(t *testing.T, b []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("excelize cannot open the file: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func numFmt(t *testing.T, f *excelize.File, sheet, cell string) string {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomNumFmt != nil {
		return *st.CustomNumFmt
	}
	return "builtin:" + strconv.Itoa(st.NumFmt)
}

func cellValue(t *testing.T, f *excelize.File, sheet, cell string) string {
	t.Helper()
	v, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestXLSXCells(t *testing.T) {
	t.Parallel()
	shanghai := mustZone(t, "Asia/Shanghai")
	out := encode(t, export.FormatXLSX, Options{Lang: export.HeaderLangEN, Location: shanghai}, fixtureRows())
	f := openXLSX(t, out)
	if got := f.GetSheetList(); strings.Join(got, "|") != "Usage Logs|Hourly Summary" {
		t.Fatalf("sheets %q", got)
	}
	const s = "Usage Logs"
	for i, h := range columnsEN {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1)
		if v := cellValue(t, f, s, cell); v != h {
			t.Errorf("header %s = %q, want %q", cell, v, h)
		}
	}
	panes, err := f.GetPanes(s)
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("panes %+v, %v: want the header row frozen", panes, err)
	}

	// Types: numbers are numbers (no t attribute), text is inline text.
	types := map[string]excelize.CellType{
		"A2": excelize.CellTypeUnset, "B2": excelize.CellTypeInlineString, "D2": excelize.CellTypeInlineString,
		"H2": excelize.CellTypeUnset, "I2": excelize.CellTypeUnset, "N2": excelize.CellTypeUnset,
		"O2": excelize.CellTypeUnset, "P2": excelize.CellTypeUnset, "Q2": excelize.CellTypeInlineString, "R2": excelize.CellTypeUnset,
	}
	for cell, want := range types {
		if got, err := f.GetCellType(s, cell); err != nil || got != want {
			t.Errorf("type of %s = %v, %v; want %v", cell, got, err, want)
		}
	}
	values := map[string]string{
		"B2": "=1+2", // text in a spreadsheet cell is never a formula: no guard needed
		"C2": "laptop, work", "H2": "200", "I2": "1500", "N2": "5900",
		"O2": "1.23456789012346", "P2": "2450", "Q2": "sess_abc123", "R2": "1",
		"D3": "", "O3": "0", "H4": "", "P4": "", "O4": "0.000123",
		"A5": "", "I5": "1234567890123456", "O5": "1000000",
	}
	for cell, want := range values {
		if got := cellValue(t, f, s, cell); got != want {
			t.Errorf("%s = %q, want %q", cell, got, want)
		}
	}
	// Times are date-time serials of the Shanghai wall clock.
	serial, err := strconv.ParseFloat(cellValue(t, f, s, "A2"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if tm, err := excelize.ExcelDateToTime(serial, false); err != nil || !tm.Round(time.Millisecond).Equal(time.Date(2026, 1, 29, 18, 30, 0, 0, time.UTC)) {
		t.Errorf("A2 serial %v is %v, want 2026-01-29 18:30 (Shanghai wall clock)", serial, tm)
	}
	fmts := map[string]string{"A2": timeFormat, "O2": costFormat, "I2": "builtin:1", "O5": costFormat}
	for cell, want := range fmts {
		if got := numFmt(t, f, s, cell); got != want {
			t.Errorf("number format of %s = %q, want %q", cell, got, want)
		}
	}
	if got, _ := f.GetCellValue(s, "A2"); got != "2026-01-29 18:30:00.000" {
		t.Errorf("A2 shows %q", got)
	}
}

func TestXLSXSummaryAndSheets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, summary string
		rows          []export.UsageRow
		perSheet      int
		sheets        []string
		periods       []string
	}{
		{"hourly within a day", "Hourly Summary", xlsxRows(7, 4*time.Hour), 100,
			[]string{"Usage Logs", "Hourly Summary"},
			[]string{"2026-01-28 10:00", "2026-01-28 14:00", "2026-01-28 18:00", "2026-01-28 22:00", "2026-01-29 02:00", "2026-01-29 06:00", "2026-01-29 10:00"}},
		{"daily past a day, continued sheets", "Daily Summary", xlsxRows(10, 5*time.Hour), 4,
			[]string{"Usage Logs", "Usage Logs (2)", "Usage Logs (3)", "Daily Summary"},
			[]string{"2026-01-27", "2026-01-28", "2026-01-29"}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		enc, err := NewXLSX(&buf, Options{Lang: export.HeaderLangEN})
		if err != nil {
			t.Fatal(err)
		}
		enc.perSheet = c.perSheet
		for i := range c.rows {
			if err := enc.Write(&c.rows[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Finish(); err != nil {
			t.Fatal(err)
		}
		enc.Close()
		f := openXLSX(t, buf.Bytes())
		if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(c.sheets, "|") {
			t.Errorf("%s: sheets %q, want %q", c.name, got, c.sheets)
		}
		// Every row is on some data sheet, in order, each sheet with a header.
		var sessions []string
		for _, sh := range c.sheets[:len(c.sheets)-1] {
			rows, err := f.GetRows(sh)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows)-1 > c.perSheet || rows[0][0] != "Time" {
				t.Errorf("%s: sheet %s has %d rows, header %q", c.name, sh, len(rows), rows[0])
			}
			for _, r := range rows[1:] {
				sessions = append(sessions, r[8]) // input tokens, distinct per row
			}
		}
		if len(sessions) != len(c.rows) {
			t.Errorf("%s: %d data rows on the sheets, want %d", c.name, len(sessions), len(c.rows))
		}
		for i, v := range sessions {
			if v != strconv.FormatInt(c.rows[i].InputTokens, 10) {
				t.Errorf("%s: data row %d has input tokens %s, want %d", c.name, i, v, c.rows[i].InputTokens)
				break
			}
		}

		// The summary: one line per period, then a total that is the sum of the rows.
		sum, err := f.GetRows(c.summary, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum) != len(c.periods)+2 {
			t.Fatalf("%s: summary has %d lines, want header + %d + total", c.name, len(sum), len(c.periods))
		}
		for i, p := range c.periods {
			shown, _ := f.GetCellValue(c.summary, "A"+strconv.Itoa(i+2))
			if shown != p {
				t.Errorf("%s: period %d shows %q, want %q", c.name, i, shown, p)
			}
		}
		total := sum[len(sum)-1]
		if total[0] != "Total" {
			t.Errorf("%s: last line %q is not the total", c.name, total)
		}
		var requests, input, totalTokens int64
		cost := new(big.Rat)
		for _, r := range c.rows {
			requests++
			input += r.InputTokens
			totalTokens += r.TotalTokens
			x, _ := new(big.Rat).SetString(r.CostUSD)
			cost.Add(cost, x)
		}
		wantCost, _ := appendDecimal(nil, cost.FloatString(30))
		want := map[int]string{1: strconv.FormatInt(requests, 10), 2: strconv.FormatInt(input, 10), 7: strconv.FormatInt(totalTokens, 10), 8: string(wantCost)}
		for col, w := range want {
			if total[col] != w {
				t.Errorf("%s: total column %d = %s, want %s", c.name, col, total[col], w)
			}
		}
		// The period lines add up to the total too.
		var lineRequests int64
		for _, l := range sum[1 : len(sum)-1] {
			n, _ := strconv.ParseInt(l[1], 10, 64)
			lineRequests += n
		}
		if lineRequests != requests {
			t.Errorf("%s: period lines count %d requests, want %d", c.name, lineRequests, requests)
		}
	}
}

func TestXLSXChineseNamesAndCloseWithoutFinish(t *testing.T) {
	t.Parallel()
	rows := xlsxRows(3, time.Minute)
	var buf bytes.Buffer
	enc, err := NewXLSX(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := enc.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	// A failed export closes without finishing.
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	out := encode(t, export.FormatXLSX, Options{}, rows)
	f := openXLSX(t, out)
	if got := f.GetSheetList(); strings.Join(got, "|") != "使用记录|每小时汇总" {
		t.Errorf("sheets %q", got)
	}
	if v := cellValue(t, f, "使用记录", "O1"); v != "成本(USD)" {
		t.Errorf("O1 = %q", v)
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	t.Parallel()
	if _, err := New("orc", io.Discard, Options{}); export.KindOf(err) != export.KindInvalid {
		t.Errorf("New(orc) = %v, want an invalid-input error", err)
	}
}

// Every absent value is null, whatever its column: no key row, provider,
// model, original model, endpoint, status, duration, session or time. Counts and
// the cost are always numbers (CCH sums a NULL count as 0).
func TestJSONLAbsentValuesAreNull(t *testing.T) {
	t.Parallel()
	rows := fixtureRows()
	rows[2].Provider = nil
	out := encode(t, export.FormatJSONL, Options{}, rows[2:])
	want := `{"id":1,"time":"2026-01-28T23:00:00.000Z","user_id":7,"user":"  =SUM(A1:A9)","key_id":null,"key":"@ci","provider_id":9,"provider":null,"model":null,"original_model":null,"endpoint":null,"status_code":null,"input_tokens":10,"output_tokens":0,"cache_write_5m_tokens":100,"cache_write_1h_tokens":200,"cache_read_tokens":0,"total_tokens":310,"cost_usd":"0.000123","duration_ms":null,"session_id":null,"retry_count":3}` + "\n" +
		`{"id":0,"time":null,"user_id":1,"user":"-rm -rf","key_id":null,"key":"+backup","provider_id":0,"provider":null,"model":null,"original_model":null,"endpoint":null,"status_code":null,"input_tokens":1234567890123456,"output_tokens":0,"cache_write_5m_tokens":0,"cache_write_1h_tokens":0,"cache_read_tokens":0,"total_tokens":1234567890123456,"cost_usd":"999999.999999999999999","duration_ms":null,"session_id":null,"retry_count":0}` + "\n"
	if string(out) != want {
		t.Errorf("lines\n%s\nwant\n%s", out, want)
	}
}
