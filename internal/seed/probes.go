package seed

import (
	"math/rand/v2"
	"time"
)

var probeColumns = []string{"id", "endpoint_id", "source", "ok", "status_code", "latency_ms", "error_type", "error_message", "created_at"}

// Probe cadence: one scheduled probe per endpoint every probeEvery over the day before Now.
const (
	probeEvery = 5 * time.Minute
	probeSlots = int(24 * time.Hour / probeEvery)
)

// fixedProbes are the newest probes of every endpoint that is not down, so that the latencies a
// renderer rounds awkwardly are always present: 1125 ms ("1.13s"), 1005 ms ("1.00s"), 999 ms.
var fixedProbes = []struct {
	status, latency any
}{
	{int32(200), int32(1125)},
	{int32(200), int32(1005)},
	{int32(200), int32(999)},
	{int32(200), int32(2000)},
	{nil, int32(45)}, // a TCP-only probe: ok without a status
}

var networkErrors = []string{
	"fetch failed: connect ECONNREFUSED 10.0.0.12:443",
	"getaddrinfo ENOTFOUND relay.example.cn",
	"socket hang up",
	"Client network socket disconnected before secure TLS connection was established",
}

// probeRows returns every provider_endpoint_probe_logs row, oldest first, with ids in time
// order as the prober would have inserted them. A day of probes is a few thousand rows, so they
// are built in memory.
func probeRows(w *world, seed int64) [][]any {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x70726f6265730000)) // "probes"
	rows := make([][]any, 0, probeSlots*len(w.endpoints))
	var prevOffset time.Duration
	for k := probeSlots - 1; k >= 0; k-- {
		for _, e := range w.endpoints {
			offset := time.Duration(rng.IntN(20_000)) * time.Millisecond
			if rng.IntN(20) == 0 {
				offset = prevOffset // two endpoints probed in the same instant
			}
			prevOffset = offset
			at := w.now.Add(-time.Duration(k)*probeEvery - offset)
			if e.deletedAt != nil && at.After(*e.deletedAt) {
				continue // deleted endpoints are no longer probed
			}
			row := []any{int32(len(rows) + 1), e.id, "scheduled", true, nil, nil, nil, nil, at}
			switch s := rng.IntN(100); {
			case s < 3:
				row[2] = "manual"
			case s < 5:
				row[2] = "runtime"
			}
			if k >= 1 && k <= len(fixedProbes) && e.failPerMille < 1000 {
				f := fixedProbes[k-1]
				row[4], row[5] = f.status, f.latency
				rows = append(rows, row)
				continue
			}
			if rng.IntN(1000) < e.failPerMille {
				failProbe(rng, row)
			} else {
				okProbe(rng, row)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func okProbe(rng *rand.Rand, row []any) {
	switch s := rng.IntN(100); {
	case s < 85:
		row[4] = int32(200)
	case s < 90:
		row[4] = int32(401)
	case s < 95:
		row[4] = int32(404)
	}
	if rng.IntN(10) == 0 {
		row[5] = int32(1000 + rng.IntN(3000))
	} else {
		row[5] = int32(40 + rng.IntN(900))
	}
}

func failProbe(rng *rand.Rand, row []any) {
	row[3] = false
	switch s := rng.IntN(10); {
	case s < 4:
		row[6] = "timeout"
		row[7] = "The operation was aborted due to timeout"
		if rng.IntN(2) == 0 {
			row[5] = int32(10_000 + rng.IntN(5000))
		}
	case s < 7:
		row[6] = "network_error"
		row[7] = networkErrors[rng.IntN(len(networkErrors))]
		row[5] = int32(5 + rng.IntN(300))
	default:
		code := []int32{500, 502, 503, 504}[rng.IntN(4)]
		row[4] = code
		row[5] = int32(50 + rng.IntN(3000))
		row[6] = "http_5xx"
		row[7] = map[int32]string{500: "HTTP 500 Internal Server Error", 502: "HTTP 502 Bad Gateway", 503: "HTTP 503 Service Unavailable", 504: "HTTP 504 Gateway Timeout"}[code]
	}
}
