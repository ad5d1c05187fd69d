package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/hubexport/hubexport/internal/export"
)

func benchmarkUpload(b *testing.B, st export.ObjectStore) {
	const size = 64 << 20
	chunk := testData(32<<10, 7) // what a CSV encoder hands over
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("bench/%d.csv", i)
		up, err := st.Create(ctx, key, "")
		if err != nil {
			b.Fatal(err)
		}
		for written := 0; written < size; written += len(chunk) {
			if _, err := up.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if err := up.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = st.Delete(ctx, key)
		b.StartTimer()
	}
}

func BenchmarkLocalUpload(b *testing.B) { benchmarkUpload(b, newLocal(b)) }

func BenchmarkS3Upload(b *testing.B) {
	for _, conc := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			benchmarkUpload(b, newS3(b, func(c *Config) {
				c.S3.PartSize = 8 << 20
				c.S3.Concurrency = conc
			}))
		})
	}
}
