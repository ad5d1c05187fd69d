package usagelog

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/parquet-go/parquet-go"
)

// ReadParquet reads a file the Parquet encoder wrote back into the rows of
// its JSON Lines twin, for readers in Go and for the tests that compare the
// two: every field as JSON Lines has it but the time, which is RFC 3339 with
// milliseconds in UTC (Parquet keeps instants, not zones), and a NULL cost
// (NaN in the hub), which is "NaN".
func ReadParquet(r io.ReaderAt, size int64) ([]JSONLRow, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("usagelog: open parquet: %w", err)
	}
	pr := parquet.NewGenericReader[parquetRow](f, parquetSchema)
	defer pr.Close()
	var out []JSONLRow
	buf := make([]parquetRow, parquetBatch)
	for {
		n, err := pr.Read(buf)
		for i := range buf[:n] {
			out = append(out, jsonlRowOf(&buf[i]))
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("usagelog: read parquet: %w", err)
		}
	}
}

func jsonlRowOf(p *parquetRow) JSONLRow {
	j := JSONLRow{
		ID: p.ID, UserID: p.UserID, User: p.User, KeyID: p.KeyID, Key: p.Key, ProviderID: p.ProviderID,
		Provider: p.Provider, Model: p.Model, OriginalModel: p.OriginalModel, Endpoint: p.Endpoint,
		InputTokens: p.InputTokens, OutputTokens: p.OutputTokens, CacheWrite5m: p.CacheWrite5mTokens,
		CacheWrite1h: p.CacheWrite1hTokens, CacheRead: p.CacheReadTokens, TotalTokens: p.TotalTokens,
		CostUSD: "NaN", DurationMs: p.DurationMs, SessionID: p.SessionID, RetryCount: p.RetryCount,
	}
	if p.Time != nil {
		s := time.UnixMilli(*p.Time).UTC().Format(timeLayout)
		j.Time = &s
	}
	if p.StatusCode != nil {
		v := int64(*p.StatusCode)
		j.StatusCode = &v
	}
	if p.CostUSD != nil {
		j.CostUSD = DecimalText(p.CostUSD[:], ParquetCostScale)
	}
	return j
}

// DecimalText renders a Parquet DECIMAL's big-endian two's complement bytes
// with scale decimals as exact decimal text, as JSON Lines writes costs
// (no trailing fractional zeros, 0 not -0).
func DecimalText(b []byte, scale int) string {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return exactDecimal(new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(scale))
}
