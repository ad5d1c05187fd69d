package web

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxFailureAddrs bounds the addresses the failure limiter remembers.
const maxFailureAddrs = 10_000

// failureLimiter counts failed authentications per client address: each
// address may fail perMinute times a minute (a token bucket, refilled
// evenly); over that, its requests are refused before any credential is
// looked up, until the bucket refills.
type failureLimiter struct {
	perMinute int

	mu     sync.Mutex
	byAddr map[string]*rate.Limiter
}

func newFailureLimiter(perMinute int) *failureLimiter {
	return &failureLimiter{perMinute: perMinute, byAddr: map[string]*rate.Limiter{}}
}

// blocked reports whether addr is over its limit now, and how long until it
// may try again.
func (f *failureLimiter) blocked(addr string, now time.Time) (time.Duration, bool) {
	if f.perMinute <= 0 {
		return 0, false
	}
	f.mu.Lock()
	lim := f.byAddr[addr]
	f.mu.Unlock()
	if lim == nil {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second)), true
}

// failed records a failed authentication from addr.
func (f *failureLimiter) failed(addr string, now time.Time) {
	if f.perMinute <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lim := f.byAddr[addr]
	if lim == nil {
		if len(f.byAddr) >= maxFailureAddrs {
			f.forgetRefilled(now)
		}
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(f.perMinute)), f.perMinute)
		f.byAddr[addr] = lim
	}
	lim.AllowN(now, 1)
}

// forgetRefilled drops the addresses whose bucket is full again (they
// would start afresh anyway); if none is, it drops one at random so the map
// stays bounded.
func (f *failureLimiter) forgetRefilled(now time.Time) {
	for addr, lim := range f.byAddr {
		if lim.TokensAt(now) >= float64(f.perMinute) {
			delete(f.byAddr, addr)
		}
	}
	if len(f.byAddr) >= maxFailureAddrs {
		for addr := range f.byAddr {
			delete(f.byAddr, addr)
			break
		}
	}
}

// writeTimeout gives every write of next's responses d to complete: a
// download whose client stops reading is dropped d after it stalled, not
// kept open, while a slow but moving one goes on.
func writeTimeout(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: d}
		next.ServeHTTP(dw, r)
		// Flush under the deadline, then clear it for the connection's next request.
		_ = dw.rc.SetWriteDeadline(time.Now().Add(d))
		_ = dw.rc.Flush()
		_ = dw.rc.SetWriteDeadline(time.Time{})
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
