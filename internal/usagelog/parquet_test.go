package usagelog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/hubexport/hubexport/internal/export"
)

// parquetFixtureRows add to fixtureRows what only a typed file can get
// wrong: invalid UTF-8, a NaN cost, negative and tiny costs, digits past the
// scale that are zeros, ids and counts past 32 bits, a pre-1970 time, a
// status at the top of the range, an empty-but-present provider.
func parquetFixtureRows() []export.UsageRow {
	rows := fixtureRows()
	return append(rows,
		export.UsageRow{ID: 9, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), UserID: 99,
			User: "bad \xff\xfe utf8", Key: "sk-g…3456", CostUSD: "NaN", SessionID: "\u2028", Model: "m\x00x"},
		export.UsageRow{ID: 1 << 40, CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
			UserID: 1 << 35, User: "neg", KeyID: i64(1 << 41), Key: "k", ProviderID: 1 << 36, Provider: str(""),
			StatusCode: i64(599), DurationMs: i64(1 << 42), RetryCount: 1 << 33, CostUSD: "-0.000000000000001",
			CacheWrite1h: 1 << 50, CacheRead: -5},
		export.UsageRow{ID: 11, UserID: 3, User: "u", Key: "k", CostUSD: "-999999.999999999999999000"},
		export.UsageRow{ID: 12, UserID: 3, User: "u", Key: "k", CostUSD: "+12.3000000000000000000"},
		export.UsageRow{ID: 13, UserID: 3, User: "u", Key: "k", CostUSD: "-0.000000000000000"},
	)
}

// jsonlRows decodes a JSON Lines file, times moved to UTC (Parquet keeps
// instants, JSON Lines writes them in the export's zone).
func jsonlRows(t *testing.T, b []byte) []JSONLRow {
	t.Helper()
	var out []JSONLRow
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var r JSONLRow
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Bytes(), err)
		}
		if r.Time != nil {
			tm, err := time.Parse(time.RFC3339Nano, *r.Time)
			if err != nil {
				t.Fatal(err)
			}
			s := tm.UTC().Format(timeLayout)
			r.Time = &s
		}
		out = append(out, r)
	}
	return out
}

func compareRows(t *testing.T, reader string, got, want []JSONLRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", reader, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("%s: row %d\n got %s\nwant %s", reader, i, g, w)
		}
	}
}

// The Parquet file holds exactly what the JSON Lines file of the same rows
// holds, field by field, read back with the library that wrote it.
func TestParquetMatchesJSONL(t *testing.T) {
	t.Parallel()
	rows := parquetFixtureRows()
	o := Options{Location: mustZone(t, "Asia/Shanghai")}
	pq := encode(t, export.FormatParquet, o, rows)
	if !bytes.HasPrefix(pq, []byte("PAR1")) || !bytes.HasSuffix(pq, []byte("PAR1")) {
		t.Fatalf("not a Parquet file: %q…", pq[:min(len(pq), 16)])
	}
	got, err := ReadParquet(bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatal(err)
	}
	want := jsonlRows(t, encode(t, export.FormatJSONL, o, rows))
	compareRows(t, "parquet-go", got, want)
	// The values are the stored ones: no formula guard, costs exact.
	if got[0].User != "=1+2" || got[3].User != "-rm -rf" || got[0].CostUSD != "1.234567890123456" ||
		got[3].CostUSD != "999999.999999999999999" || got[5].CostUSD != "-0.000000000000001" || got[4].CostUSD != "NaN" {
		t.Errorf("stored values altered: %q %q %q %q %q %q", got[0].User, got[3].User, got[0].CostUSD, got[3].CostUSD, got[5].CostUSD, got[4].CostUSD)
	}
	if again := encode(t, export.FormatParquet, o, rows); !bytes.Equal(again, pq) {
		t.Error("the same rows gave different Parquet bytes")
	}
}

// arrowRead reads a file with Apache Arrow's Go Parquet implementation, a
// reader we did not write (its column readers, below the Arrow conversion),
// into JSONLRows, checking the schema on the way: names in JSON Lines order,
// physical and logical types, which columns may be NULL.
func arrowRead(t *testing.T, b []byte) ([]JSONLRow, *file.Reader) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow: open: %v", err)
	}
	t.Cleanup(func() { pf.Close() })

	type col struct {
		name     string
		phys     parquet.Type
		logical  string // the logical type's text, a prefix of it
		nullable bool
	}
	i64, bin := parquet.Types.Int64, parquet.Types.ByteArray
	const integer, text = "Int(bitWidth=64, isSigned=true)", "String"
	wantCols := []col{
		{"id", i64, integer, false}, {"time", i64, "Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds", true},
		{"user_id", i64, integer, false}, {"user", bin, text, false}, {"key_id", i64, integer, true},
		{"key", bin, text, false}, {"provider_id", i64, integer, false}, {"provider", bin, text, true},
		{"model", bin, text, true}, {"original_model", bin, text, true}, {"endpoint", bin, text, true},
		{"status_code", parquet.Types.Int32, "Int(bitWidth=32, isSigned=true)", true},
		{"input_tokens", i64, integer, false}, {"output_tokens", i64, integer, false},
		{"cache_write_5m_tokens", i64, integer, false}, {"cache_write_1h_tokens", i64, integer, false},
		{"cache_read_tokens", i64, integer, false}, {"total_tokens", i64, integer, false},
		{"cost_usd", parquet.Types.FixedLenByteArray, "Decimal(precision=38, scale=15)", true},
		{"duration_ms", i64, integer, true}, {"session_id", bin, text, true}, {"retry_count", i64, integer, false},
	}
	sch := pf.MetaData().Schema
	if sch.NumColumns() != len(wantCols) {
		t.Fatalf("arrow: %d columns, want %d", sch.NumColumns(), len(wantCols))
	}
	for i, w := range wantCols {
		c := sch.Column(i)
		if c.Name() != w.name || c.PhysicalType() != w.phys || !strings.HasPrefix(c.LogicalType().String(), w.logical) ||
			(c.MaxDefinitionLevel() == 1) != w.nullable {
			t.Errorf("arrow: column %d is %s %s %s nullable=%v, want %s %s %s nullable=%v", i, c.Name(), c.PhysicalType(),
				c.LogicalType(), c.MaxDefinitionLevel() == 1, w.name, w.phys, w.logical, w.nullable)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	var out []JSONLRow
	for g := range pf.NumRowGroups() {
		rg := pf.RowGroup(g)
		n := rg.NumRows()
		column := func(i int) file.ColumnChunkReader {
			cr, err := rg.Column(i)
			if err != nil {
				t.Fatalf("arrow: row group %d column %d: %v", g, i, err)
			}
			return cr
		}
		ints := func(i int) []*int64 { return readColumn(t, column(i), n, func(v int64) int64 { return v }) }
		strs := func(i int) []*string {
			return readColumn(t, column(i), n, func(v parquet.ByteArray) string { return string(v) })
		}
		cols := make([]any, len(wantCols))
		for i, w := range wantCols {
			switch w.phys {
			case parquet.Types.Int64:
				cols[i] = ints(i)
			case parquet.Types.ByteArray:
				cols[i] = strs(i)
			}
		}
		status := readColumn(t, column(11), n, func(v int32) int64 { return int64(v) })
		cost := readColumn(t, column(18), n, func(v parquet.FixedLenByteArray) string {
			// Through math/big, not through our DecimalText.
			x := new(big.Int).SetBytes(v)
			if v[0]&0x80 != 0 {
				x.Sub(x, new(big.Int).Lsh(big.NewInt(1), 128))
			}
			q := new(big.Rat).SetFrac(x, new(big.Int).Exp(big.NewInt(10), big.NewInt(15), nil))
			return exactDecimal(q.FloatString(15))
		})
		i64At := func(i int, k int64) *int64 { return cols[i].([]*int64)[k] }
		strAt := func(i int, k int64) *string { return cols[i].([]*string)[k] }
		for k := range n {
			r := JSONLRow{
				ID: *i64At(0, k), UserID: *i64At(2, k), User: *strAt(3, k), KeyID: i64At(4, k), Key: *strAt(5, k),
				ProviderID: *i64At(6, k), Provider: strAt(7, k), Model: strAt(8, k), OriginalModel: strAt(9, k),
				Endpoint: strAt(10, k), StatusCode: status[k], InputTokens: *i64At(12, k), OutputTokens: *i64At(13, k),
				CacheWrite5m: *i64At(14, k), CacheWrite1h: *i64At(15, k), CacheRead: *i64At(16, k),
				TotalTokens: *i64At(17, k), CostUSD: "NaN", DurationMs: i64At(19, k), SessionID: strAt(20, k),
				RetryCount: *i64At(21, k),
			}
			if ms := i64At(1, k); ms != nil {
				s := time.UnixMilli(*ms).UTC().Format(timeLayout)
				r.Time = &s
			}
			if c := cost[k]; c != nil {
				r.CostUSD = *c
			}
			out = append(out, r)
		}
	}
	return out, pf
}

// batchReader is what Arrow's typed column chunk readers have in common.
type batchReader[T any] interface {
	ReadBatch(batchSize int64, values []T, defLvls, repLvls []int16) (total int64, valuesRead int, err error)
}

// readColumn reads n values of a column chunk, nil where NULL, converting
// each as it is read (byte arrays point into pages that are reused).
func readColumn[T, V any](t *testing.T, cr file.ColumnChunkReader, n int64, conv func(T) V) []*V {
	t.Helper()
	r, ok := cr.(batchReader[T])
	if !ok {
		t.Fatalf("arrow: column %s is a %T", cr.Descriptor().Name(), cr)
	}
	maxDef := cr.Descriptor().MaxDefinitionLevel()
	out := make([]*V, 0, n)
	vals, defs := make([]T, n), make([]int16, n)
	for int64(len(out)) < n {
		total, _, err := r.ReadBatch(n-int64(len(out)), vals, defs, nil)
		if err != nil || total == 0 {
			t.Fatalf("arrow: column %s: %d of %d values: %v", cr.Descriptor().Name(), len(out), n, err)
		}
		vi := 0
		for k := range total {
			if maxDef > 0 && defs[k] < maxDef {
				out = append(out, nil)
				continue
			}
			v := conv(vals[vi])
			vi++
			out = append(out, &v)
		}
	}
	return out
}

// Apache Arrow's reader, which we did not write, reads the same schema and
// values, every column chunk is zstd-compressed, and the logical types are
// the ones analysts' tools key on.
func TestParquetReadByArrow(t *testing.T) {
	t.Parallel()
	rows := parquetFixtureRows()
	o := Options{Location: mustZone(t, "America/New_York")}
	pq := encode(t, export.FormatParquet, o, rows)
	got, pf := arrowRead(t, pq)
	compareRows(t, "arrow", got, jsonlRows(t, encode(t, export.FormatJSONL, o, rows)))

	md := pf.MetaData()
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d column %d compressed with %v, want zstd", g, c, cc.Compression())
			}
		}
	}
}

// A big export is written in bounded row groups, and the writer's heap stays
// flat: it does not grow with the row count.
func TestParquetRowGroupsBoundMemory(t *testing.T) {
	// Not parallel: the heap is the process's, and parallel tests (the XLSX
	// ones) would count in it; Go starts them only after the serial tests.
	const n = 3*ParquetRowGroupRows + 5
	model, sess := "claude-sonnet-4-5-20250929", "sess_0123456789abcdef0123456789abcdef"
	row := export.UsageRow{UserID: 5, User: "alice", KeyID: i64(7), Key: "alice laptop", ProviderID: 1,
		Provider: str("Anthropic Official"), Model: model, OriginalModel: model, Endpoint: "/v1/messages",
		StatusCode: i64(200), InputTokens: 1500, OutputTokens: 3200, CacheRead: 1200, TotalTokens: 5900,
		DurationMs: i64(2450), RetryCount: 1}
	var out bytes.Buffer
	enc := NewParquet(&out, Options{})
	defer enc.Close()
	var peak [2]uint64 // live heap over the first row group, then over the rest
	var ms runtime.MemStats
	start := time.Date(2026, 1, 29, 0, 0, 0, 0, time.UTC)
	for i := range n {
		row.ID = int64(n - i)
		row.CreatedAt = start.Add(-time.Duration(i) * time.Second)
		row.CostUSD = "0.0" + strings.Repeat("1", i%14+1)
		row.SessionID = sess[:len(sess)-i%7]
		if err := enc.Write(&row); err != nil {
			t.Fatal(err)
		}
		if i%16384 == 0 {
			runtime.GC() // live memory, not garbage yet to be collected
			runtime.ReadMemStats(&ms)
			// The output buffer grows with the file by design: not the writer's.
			held := ms.HeapAlloc - uint64(out.Cap())
			ph := &peak[0]
			if i > ParquetRowGroupRows {
				ph = &peak[1]
			}
			*ph = max(*ph, held)
		}
	}
	if err := enc.Finish(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %d bytes; live heap peak %d MiB in the first row group, %d MiB after",
		n, out.Len(), peak[0]>>20, peak[1]>>20)
	if peak[1] > peak[0]+8<<20 || peak[1] > 32<<20 {
		t.Errorf("heap peak %d MiB after the first row group, %d MiB in it: the writer's memory grows with the rows", peak[1]>>20, peak[0]>>20)
	}

	b := out.Bytes()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if g := pf.NumRowGroups(); g != 4 || pf.NumRows() != n {
		t.Fatalf("%d row groups, %d rows; want 4 and %d", g, pf.NumRows(), n)
	}
	for g := range pf.NumRowGroups() {
		if r := pf.MetaData().RowGroup(g).NumRows(); r > ParquetRowGroupRows {
			t.Errorf("row group %d holds %d rows, more than %d", g, r, ParquetRowGroupRows)
		}
	}
	got, err := ReadParquet(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.ID != int64(n-i) || r.CostUSD != "0.0"+strings.Repeat("1", i%14+1) {
			t.Fatalf("row %d: id %d cost %s", i, r.ID, r.CostUSD)
		}
	}
}

func TestScaledDecimal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string // want "" for null, "error" for an error
	}{
		{"0", "0"}, {"-0", "0"}, {"1", "1"}, {"1.234567890123456", "1.234567890123456"},
		{"999999.999999999999999", "999999.999999999999999"}, {"-999999.999999999999999", "-999999.999999999999999"},
		{"0.000000000000001", "0.000000000000001"}, {"-0.000000000000001", "-0.000000000000001"},
		{"12.300000000000000000000", "12.3"}, {".5", "0.5"}, {"5.", "5"}, {"+7", "7"},
		{"99999999999999999999999.999999999999999", "99999999999999999999999.999999999999999"},
		{"-99999999999999999999999.999999999999999", "-99999999999999999999999.999999999999999"},
		{"00000000000000000000000000001.5", "1.5"},
		{"NaN", ""},
		{"100000000000000000000000", "error"}, {"0.0000000000000001", "error"}, {"1e5", "error"}, {"", "error"},
		{"-", "error"}, {"Infinity", "error"},
	} {
		var b [16]byte
		ok, err := scaledDecimal(&b, c.in, ParquetCostScale)
		var got string
		switch {
		case err != nil:
			got = "error"
		case !ok:
			got = ""
		default:
			got = DecimalText(b[:], ParquetCostScale)
		}
		if got != c.want {
			t.Errorf("scaledDecimal(%q) = %q (%v), want %q", c.in, got, err, c.want)
		}
	}
}

// A cost that is not exact at 15 decimals fails the export rather than
// being rounded.
func TestParquetRefusesInexactCost(t *testing.T) {
	t.Parallel()
	enc := NewParquet(io.Discard, Options{})
	defer enc.Close()
	err := enc.Write(&export.UsageRow{ID: 77, User: "u", Key: "k", CostUSD: "0.1234567890123456"})
	if err == nil || !strings.Contains(err.Error(), "request 77") || !strings.Contains(err.Error(), "15 decimals") {
		t.Errorf("error %v, want one naming the request and the scale", err)
	}
}
