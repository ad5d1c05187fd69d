package usagelog

import (
	"fmt"
	"io"
	"math/bits"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hubexport/hubexport/internal/export"
)

// Parquet writes the rows as an Apache Parquet file: one typed column per
// JSON Lines key, in the same order and under the same names, zstd-compressed,
// in row groups of at most ParquetRowGroupRows rows, so that what the writer
// holds stays bounded whatever the number of rows.
//
// Values are the stored ones: no formula guard (this is not a spreadsheet
// format), the time as an instant (TIMESTAMP(MILLIS), adjusted to UTC: the
// export's time zone does not apply, readers show instants in theirs), the
// cost as DECIMAL(38, 15) holding the exact numeric (the hub's column is
// numeric(21, 15); 38 is the widest decimal readers map to a 128-bit integer,
// so any cost with 15 decimals fits). Absent values are NULL by the JSON
// Lines rule: SQL NULL or empty text, the key id when no keys row is left,
// and the cost when it is NaN (a decimal has no NaN). Text that is not valid
// UTF-8 has each bad byte replaced by U+FFFD, as in JSON Lines.
type Parquet struct {
	w *parquet.GenericWriter[parquetRow]
	// rows and vals are a batch handed to the writer at once (a call per row
	// costs more than the row); rows[i]'s pointers point into vals[i].
	rows []parquetRow
	vals []parquetVals
	n    int
}

// ParquetRowGroupRows bounds a row group. The writer keeps a row group's
// encoded, compressed pages in memory until the group ends (the footer needs
// their offsets and a group is written contiguously), so this is what bounds
// its memory: about 10 MiB for typical rows. It is also about what query
// engines read in parallel (DuckDB's own groups are 122,880 rows).
const ParquetRowGroupRows = 64 * 1024

// parquetPageBuffer is how many bytes of values a column gathers before they
// become a page. Each of the 22 columns has one, so this is most of the
// writer's live memory (about 17 MiB at parquet-go's default of 256 KiB,
// 10 MiB at 128 KiB), against a few percent of file size (each page is
// compressed alone).
const parquetPageBuffer = 128 << 10

// parquetBatch is how many rows are handed to the writer per call.
const parquetBatch = 256

// parquetRow is the file's schema: field order is column order, tags give
// names, logical types and encodings. Strings that repeat (names, models,
// endpoints) are dictionary-encoded; the ids and times, nearly sorted, are
// delta-encoded.
type parquetRow struct {
	ID                 int64     `parquet:"id,delta"`
	Time               *int64    `parquet:"time,timestamp(millisecond:utc)"`
	UserID             int64     `parquet:"user_id"`
	User               string    `parquet:"user,dict"`
	KeyID              *int64    `parquet:"key_id"`
	Key                string    `parquet:"key,dict"`
	ProviderID         int64     `parquet:"provider_id"`
	Provider           *string   `parquet:"provider,dict"`
	Model              *string   `parquet:"model,dict"`
	OriginalModel      *string   `parquet:"original_model,dict"`
	Endpoint           *string   `parquet:"endpoint,dict"`
	StatusCode         *int32    `parquet:"status_code"`
	InputTokens        int64     `parquet:"input_tokens"`
	OutputTokens       int64     `parquet:"output_tokens"`
	CacheWrite5mTokens int64     `parquet:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64     `parquet:"cache_write_1h_tokens"`
	CacheReadTokens    int64     `parquet:"cache_read_tokens"`
	TotalTokens        int64     `parquet:"total_tokens"`
	CostUSD            *[16]byte `parquet:"cost_usd,decimal(15:38)"`
	DurationMs         *int64    `parquet:"duration_ms"`
	SessionID          *string   `parquet:"session_id"`
	RetryCount         int64     `parquet:"retry_count"`
}

// parquetSchema names the schema after the export type rather than the Go type.
var parquetSchema = parquet.NewSchema("usage_logs", parquet.SchemaOf(parquetRow{}))

// parquetVals holds what a parquetRow's pointers point to.
type parquetVals struct {
	time, keyID, duration                          int64
	status                                         int32
	cost                                           [16]byte
	provider, model, originalModel, endpoint, sess string
}

// ParquetCostScale is the cost column's scale: its values are the cost times
// 10^15.
const ParquetCostScale = 15

// NewParquet returns the encoder. Nothing is written before the first row
// group is full or Finish is called.
func NewParquet(w io.Writer, _ Options) *Parquet {
	pw := parquet.NewGenericWriter[parquetRow](w,
		parquetSchema,
		parquet.Compression(newPageZstd()),
		parquet.MaxRowsPerRowGroup(ParquetRowGroupRows),
		parquet.PageBufferSize(parquetPageBuffer),
		// Version 1 data pages are what every reader reads (pyarrow's default too).
		parquet.DataPageVersion(1),
		parquet.CreatedBy("hubexport", "", ""),
	)
	return &Parquet{w: pw, rows: make([]parquetRow, parquetBatch), vals: make([]parquetVals, parquetBatch)}
}

// Write implements Encoder.
func (e *Parquet) Write(r *export.UsageRow) error {
	v, p := &e.vals[e.n], &e.rows[e.n]
	*p = parquetRow{
		ID: r.ID, UserID: r.UserID, User: validUTF8(r.User), Key: validUTF8(r.Key), ProviderID: r.ProviderID,
		InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CacheWrite5mTokens: r.CacheWrite5m,
		CacheWrite1hTokens: r.CacheWrite1h, CacheReadTokens: r.CacheRead, TotalTokens: r.TotalTokens,
		RetryCount: r.RetryCount,
	}
	if !r.CreatedAt.IsZero() {
		v.time = r.CreatedAt.UnixMilli()
		p.Time = &v.time
	}
	if r.KeyID != nil {
		v.keyID = *r.KeyID
		p.KeyID = &v.keyID
	}
	if r.Provider != nil {
		p.Provider = nullString(&v.provider, *r.Provider)
	}
	p.Model = nullString(&v.model, r.Model)
	p.OriginalModel = nullString(&v.originalModel, r.OriginalModel)
	p.Endpoint = nullString(&v.endpoint, r.Endpoint)
	p.SessionID = nullString(&v.sess, r.SessionID)
	if r.StatusCode != nil {
		// An HTTP status (the column is integer, 32 bits in the hub too).
		v.status = int32(*r.StatusCode)
		p.StatusCode = &v.status
	}
	if r.DurationMs != nil {
		v.duration = *r.DurationMs
		p.DurationMs = &v.duration
	}
	ok, err := scaledDecimal(&v.cost, r.CostUSD, ParquetCostScale)
	if err != nil {
		return export.Errorf(export.KindConflict, "unwritable_cost", "request %d: %v: export it as csv or jsonl, which keep any decimal", r.ID, err)
	}
	if ok {
		p.CostUSD = &v.cost
	}
	e.n++
	if e.n == len(e.rows) {
		return e.flush()
	}
	return nil
}

func (e *Parquet) flush() error {
	if e.n == 0 {
		return nil
	}
	if _, err := e.w.Write(e.rows[:e.n]); err != nil {
		return writeErr("parquet rows", err)
	}
	clear(e.rows[:e.n]) // drop the strings of the batch
	e.n = 0
	return nil
}

// Finish implements Encoder: it writes the last row group and the footer.
func (e *Parquet) Finish() error {
	if err := e.flush(); err != nil {
		return err
	}
	if err := e.w.Close(); err != nil {
		return writeErr("parquet footer", err)
	}
	return nil
}

// Close implements Encoder; the writer holds nothing but memory.
func (e *Parquet) Close() error { return nil }

// pageZstd is zstd for Parquet pages with a window as small as a page.
// parquet-go's own zstd codec keeps klauspost's default 8 MiB window, and
// with it 32 MiB of history buffers per writer, for pages that are at most
// a page buffer (256 KiB) each and compressed one by one: two thirds of the
// writer's memory for no gain in size.
type pageZstd struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newPageZstd() *pageZstd {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(pageZstdWindow), zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(fmt.Sprintf("usagelog: zstd options: %v", err)) // constant options: a programming error
	}
	return &pageZstd{enc: enc}
}

// pageZstdWindow covers a whole page: encoded values are about the size of
// the page buffer they came from.
const pageZstdWindow = 256 << 10

func (c *pageZstd) String() string                            { return "ZSTD" }
func (c *pageZstd) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *pageZstd) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode is part of the codec interface; the writer never calls it.
func (c *pageZstd) Decode(dst, src []byte) ([]byte, error) {
	if c.dec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		c.dec = d
	}
	return c.dec.DecodeAll(src, dst[:0])
}

// nullString sets *dst to s and returns dst, or nil for empty text.
func nullString(dst *string, s string) *string {
	if s == "" {
		return nil
	}
	*dst = validUTF8(s)
	return dst
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD: a Parquet STRING must be UTF-8, and JSON Lines replaces
// the same bytes the same way.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// scaledDecimal sets dst to the decimal text s (PostgreSQL's numeric output:
// an optional sign, digits, an optional fraction) times 10^scale, as a
// 128-bit big-endian two's complement integer: Parquet's DECIMAL in a
// FIXED_LEN_BYTE_ARRAY(16). It is exact: digits past the scale must be zeros,
// and the value must fit in 38 digits, else it is an error rather than a
// rounded value. ok is false for NaN, which a decimal cannot hold.
func scaledDecimal(dst *[16]byte, s string, scale int) (ok bool, err error) {
	if s == "NaN" {
		return false, nil
	}
	neg := false
	body := s
	switch {
	case strings.HasPrefix(body, "-"):
		neg, body = true, body[1:]
	case strings.HasPrefix(body, "+"):
		body = body[1:]
	}
	ip, fp, _ := strings.Cut(body, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return false, fmt.Errorf("cost %q is not a decimal", s)
	}
	if len(fp) > scale {
		if strings.Trim(fp[scale:], "0") != "" {
			return false, fmt.Errorf("cost %q has more than %d decimals", s, scale)
		}
		fp = fp[:scale]
	}
	ip = strings.TrimLeft(ip, "0")
	if len(ip)+scale > 38 {
		return false, fmt.Errorf("cost %q does not fit DECIMAL(38, %d)", s, scale)
	}
	var hi, lo uint64
	digit := func(d uint64) {
		// (hi, lo) = (hi, lo)*10 + d; at most 38 digits, so it never overflows.
		h1, l1 := bits.Mul64(lo, 10)
		var c uint64
		lo, c = bits.Add64(l1, d, 0)
		hi = hi*10 + h1 + c
	}
	for i := 0; i < len(ip); i++ {
		digit(uint64(ip[i] - '0'))
	}
	for i := 0; i < scale; i++ {
		d := uint64(0)
		if i < len(fp) {
			d = uint64(fp[i] - '0')
		}
		digit(d)
	}
	if neg {
		// Two's complement: invert and add one.
		var c uint64
		lo, c = bits.Add64(^lo, 1, 0)
		hi = ^hi + c
	}
	for i := range 8 {
		dst[i] = byte(hi >> (56 - 8*i))
		dst[8+i] = byte(lo >> (56 - 8*i))
	}
	return true, nil
}
