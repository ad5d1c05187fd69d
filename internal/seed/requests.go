package seed

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// message_request columns the seed fills, in COPY order. The c* constants index them.
var requestColumns = []string{
	"id", "provider_id", "user_id", "key", "model", "original_model", "actual_response_model",
	"duration_ms", "cost_usd", "cost_multiplier",
	"session_id", "session_identity", "session_identity_kind", "affinity_scope_tag", "affinity_fingerprint",
	"request_sequence", "provider_chain", "status_code", "api_type", "endpoint",
	"input_tokens", "output_tokens", "ttfb_ms", "first_byte_ms",
	"cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens",
	"cache_ttl_applied", "context_1m_applied",
	"error_message", "blocked_by", "blocked_reason", "user_agent", "client_ip", "messages_count",
	"created_at", "updated_at", "deleted_at",
}

const (
	cID = iota
	cProviderID
	cUserID
	cKey
	cModel
	cOriginalModel
	cActualModel
	cDuration
	cCost
	cCostMult
	cSessionID
	cSessionIdentity
	cSessionKind
	cScopeTag
	cFingerprint
	cSequence
	cChain
	cStatus
	cAPIType
	cEndpoint
	cInput
	cOutput
	cTTFB
	cFirstByte
	cCacheCreation
	cCacheRead
	cCache5m
	cCache1h
	cCacheTTL
	cContext1m
	cErrorMessage
	cBlockedBy
	cBlockedReason
	cUserAgent
	cClientIP
	cMessagesCount
	cCreatedAt
	cUpdatedAt
	cDeletedAt
	numRequestColumns
)

// usage_ledger columns, in COPY order. Those also in requestColumns are copied from the request
// row as CCH's trigger copies them; the others are computed in ledgerSource.
var ledgerColumns = []string{
	"id", "request_id", "user_id", "key", "provider_id", "final_provider_id",
	"model", "original_model", "actual_response_model", "endpoint", "api_type",
	"session_id", "session_identity", "session_identity_kind", "affinity_scope_tag", "affinity_fingerprint",
	"status_code", "is_success", "success_rate_outcome", "blocked_by",
	"cost_usd", "cost_multiplier", "input_tokens", "output_tokens",
	"cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens",
	"cache_ttl_applied", "context_1m_applied", "duration_ms", "ttfb_ms", "first_byte_ms", "client_ip", "created_at",
}

// Indexes of the ledger columns computed rather than copied.
const (
	lID            = 0
	lRequestID     = 1
	lFinalProvider = 5
	lIsSuccess     = 17
	lOutcome       = 18
)

// Endpoints CCH's trigger keeps out of the ledger (they are not billed).
const (
	endpointCountTokens = "/v1/messages/count_tokens"
	endpointCompact     = "/v1/responses/compact"
)

// requestSpan is how far back the oldest request goes from Now.
const requestSpan = 30 * 24 * time.Hour

type session struct {
	id          string
	identity    any // string or nil
	kind        any
	scope       any
	fingerprint any
	seq         int32
	left        int
	req         *requester
	fam         *family
	model       string
	agent       string
	ip          any
}

var (
	zeroCost  = pgtype.Numeric{Int: big.NewInt(0), Valid: true}
	costMults = map[string]pgtype.Numeric{}
)

func init() {
	for _, s := range []string{"0.5000", "0.8500", "1.0000", "1.2000"} {
		var n pgtype.Numeric
		if err := n.Scan(s); err != nil {
			panic(err)
		}
		costMults[s] = n
	}
}

// reqGen generates message_request rows one at a time, deterministically: two generators made
// with the same world, seed and count produce the same rows, which is how the ledger pass
// regenerates them instead of holding them in memory.
type reqGen struct {
	w     *world
	rng   *rand.Rand
	n, i  int
	spanU int64 // requestSpan in microseconds
	prev  time.Time
	slots []session
	row   []any
	chain []byte

	finalProvider int32 // the last provider_chain element's id, else provider_id
	billed        bool  // CCH's trigger writes a ledger row for this request
}

func newReqGen(w *world, seed int64, n int) *reqGen {
	g := &reqGen{
		w:     w,
		rng:   rand.New(rand.NewPCG(uint64(seed), 0x7265717565737473)), // "requests"
		n:     n,
		spanU: requestSpan.Microseconds(),
		slots: make([]session, 48),
		row:   make([]any, numRequestColumns),
	}
	for i := range g.slots {
		g.newSession(&g.slots[i])
	}
	return g
}

func (g *reqGen) pickRequester() *requester {
	n := g.rng.IntN(g.w.reqWeight)
	for i := range g.w.requesters {
		r := &g.w.requesters[i]
		if n < r.weight {
			return r
		}
		n -= r.weight
	}
	return &g.w.requesters[len(g.w.requesters)-1]
}

func (g *reqGen) pickFamily() *family {
	n := g.rng.IntN(g.w.famWeight)
	for i := range g.w.families {
		f := &g.w.families[i]
		if n < f.weight {
			return f
		}
		n -= f.weight
	}
	return &g.w.families[0]
}

var clientIPs = []string{"203.0.113.7", "203.0.113.42", "198.51.100.23", "192.0.2.200", "2001:db8::1f", "2001:db8:85a3::8a2e:370:7334"}

func (g *reqGen) newSession(s *session) {
	rng := g.rng
	*s = session{
		id:   "sess_" + hex64(rng) + hex64(rng)[:8],
		left: 1 + rng.IntN(60),
		req:  g.pickRequester(),
		fam:  g.pickFamily(),
	}
	s.model = s.fam.models[rng.IntN(len(s.fam.models))]
	s.agent = s.fam.agents[rng.IntN(len(s.fam.agents))]
	if rng.IntN(20) > 0 {
		s.ip = clientIPs[rng.IntN(len(clientIPs))]
	}
	if rng.IntN(100) < 15 {
		// A prefix-affinity identity groups several client sessions under one public session.
		s.identity = "pfx:" + hex64(rng) + hex64(rng)
		s.kind = "prefix_affinity"
		s.scope = s.fam.name
		s.fingerprint = hex64(rng) + hex64(rng) + hex64(rng) + hex64(rng)
	}
}

// at returns row i's created_at: evenly spread over requestSpan ending exactly at Now, with a few
// ties and small inversions so that ordering by (created_at, id) is exercised.
func (g *reqGen) at(i int) time.Time {
	back := int64(float64(g.spanU) * float64(g.n-1-i) / float64(g.n))
	t := g.w.now.Add(-time.Duration(back) * time.Microsecond)
	if i == g.n-1 || i == 0 {
		return t
	}
	switch r := g.rng.IntN(100); {
	case r == 0:
		return g.prev // same instant as the previous request
	case r == 1:
		return t.Add(-time.Duration(g.rng.IntN(3_000_000)) * time.Microsecond)
	}
	return t
}

func (g *reqGen) next() {
	i := g.i
	g.i++
	r := g.row
	clear(r)
	at := g.at(i)
	g.prev = at
	r[cID] = int32(i + 1)
	r[cCreatedAt] = at
	r[cContext1m] = false
	g.billed = true
	switch roll := g.rng.IntN(1000); {
	case roll < 20:
		g.warmup(at)
	case roll < 30:
		g.sensitive(at)
	default:
		g.proxied(at)
	}
	if i != g.n-1 && g.rng.IntN(1000) < 3 {
		del := at.Add(time.Hour)
		if del.After(g.w.now) {
			del = g.w.now
		}
		r[cDeletedAt] = del
	}
	if ep, _ := r[cEndpoint].(string); ep == endpointCountTokens || ep == endpointCompact {
		g.billed = false
	}
}

// warmup is a Claude Code warmup request CCH answered itself: no provider, cost NULL.
func (g *reqGen) warmup(at time.Time) {
	r, rng := g.row, g.rng
	q := g.pickRequester()
	d := 1 + rng.IntN(5)
	r[cProviderID] = int32(0)
	r[cUserID] = q.userID
	r[cKey] = q.key
	r[cModel] = "claude-haiku-4-5-20251001"
	r[cOriginalModel] = "claude-haiku-4-5-20251001"
	r[cDuration] = int32(d)
	r[cCost] = nil
	r[cSessionID] = "sess_" + hex64(rng) + hex64(rng)[:8]
	r[cSequence] = int32(1)
	r[cStatus] = int32(200)
	r[cAPIType] = "claude"
	r[cEndpoint] = "/v1/messages"
	r[cBlockedBy] = "warmup"
	r[cBlockedReason] = "Anthropic warmup request intercepted"
	r[cUserAgent] = "claude-cli/2.0.31 (external, cli)"
	r[cUpdatedAt] = at.Add(time.Duration(d) * time.Millisecond)
	g.finalProvider = 0
}

// sensitive is a request CCH blocked for a sensitive word before it reached a provider.
func (g *reqGen) sensitive(at time.Time) {
	r, rng := g.row, g.rng
	q := g.pickRequester()
	d := 1 + rng.IntN(10)
	r[cProviderID] = int32(0)
	r[cUserID] = q.userID
	r[cKey] = q.key
	if rng.IntN(2) == 0 {
		r[cModel] = "claude-sonnet-4-5-20250929"
		r[cEndpoint] = "/v1/messages"
		r[cAPIType] = "claude"
	} else {
		r[cModel] = "gpt-4.1"
		r[cEndpoint] = "/v1/chat/completions"
		r[cAPIType] = "openai"
	}
	r[cOriginalModel] = r[cModel]
	r[cDuration] = int32(d)
	r[cCost] = zeroCost
	r[cStatus] = int32(400)
	r[cErrorMessage] = "请求包含敏感词：“project-x”，已拦截"
	r[cBlockedBy] = "sensitive_word"
	r[cBlockedReason] = `{"word":"project-x","matchType":"contains"}`
	r[cUpdatedAt] = at.Add(time.Duration(d) * time.Millisecond)
	g.finalProvider = 0
}

var modelRedirects = map[string]string{
	"claude-sonnet-4-20250514": "claude-sonnet-4-5-20250929",
	"gpt-4o-mini":              "deepseek-chat",
}

// proxied is a request that went to providers: a session's next request.
func (g *reqGen) proxied(at time.Time) {
	r, rng := g.row, g.rng
	s := &g.slots[rng.IntN(len(g.slots))]
	if s.left <= 0 {
		g.newSession(s)
	}
	s.left--
	s.seq++
	f := s.fam
	endpoint := pick(rng, f.endpoints)
	r[cUserID] = s.req.userID
	r[cKey] = s.req.key
	r[cAPIType] = f.apiType
	r[cEndpoint] = endpoint
	r[cUserAgent] = s.agent
	r[cClientIP] = s.ip
	if rng.IntN(100) < 3 {
		r[cSequence] = int32(1) // a client that sends no session id
	} else {
		r[cSessionID] = s.id
		r[cSessionIdentity] = s.identity
		r[cSessionKind] = s.kind
		r[cScopeTag] = s.scope
		r[cFingerprint] = s.fingerprint
		r[cSequence] = s.seq
	}
	r[cOriginalModel] = s.model
	r[cModel] = s.model
	if to, ok := modelRedirects[s.model]; ok && rng.IntN(2) == 0 {
		r[cModel] = to
	}
	if f.apiType == "claude" && endpoint == "/v1/messages" {
		r[cMessagesCount] = int32(1 + rng.IntN(int(s.seq)*2+1))
		r[cContext1m] = rng.IntN(50) == 0
	}

	a := f.providers[rng.IntN(len(f.providers))]
	b := f.providers[rng.IntN(len(f.providers))]
	r[cProviderID] = a.id
	r[cCostMult] = costMults[a.costMult]
	g.finalProvider = a.id
	g.chain = g.chain[:0]

	status := 200
	switch roll := rng.IntN(1000); {
	case roll < 10:
		status = 0 // still in flight
	case roll < 30:
		status = 400
	case roll < 60:
		status = 429
	case roll < 80:
		status = 500
	}
	if endpoint == endpointCountTokens && status != 0 {
		status = 200
	}

	if status == 0 {
		// In flight: nothing known yet but where it went.
		r[cCost] = zeroCost
		r[cUpdatedAt] = at
		if rng.IntN(2) == 0 {
			g.link(a, "initial_selection", 0)
			g.endChain()
		}
		return
	}
	d := 200 + int(decades(rng, 2, 5))
	r[cStatus] = int32(status)
	r[cDuration] = int32(d)
	r[cTTFB] = int32(d / (2 + rng.IntN(8)))
	r[cFirstByte] = int32(d / (3 + rng.IntN(10)))
	r[cUpdatedAt] = at.Add(time.Duration(d) * time.Millisecond)

	switch status {
	case 400:
		g.link(a, "client_error_non_retryable", 400)
		r[cErrorMessage] = `{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content: Input should be a valid list"}}`
		r[cCost] = zeroCost
	case 429:
		g.link(a, "retry_failed", 429)
		g.link(b, "retry_failed", 429)
		r[cErrorMessage] = "All providers are rate limited (429): Too Many Requests"
		r[cCost] = zeroCost
	case 500:
		g.link(a, "retry_failed", 500)
		g.link(b, "system_error", 0)
		r[cErrorMessage] = "Provider returned 500: upstream overloaded, please retry\n    at forward (proxy/forwarder.ts:812)"
		r[cCost] = zeroCost
	default:
		switch c := rng.IntN(100); {
		case c < 12:
			// Older rows and some replays have no chain at all.
		case c < 50:
			g.link(a, "request_success", 200)
		case c < 70:
			g.link(a, "initial_selection", 0)
			g.link(a, "request_success", 200)
		case c < 90:
			for k := 1 + rng.IntN(2); k > 0; k-- {
				g.link(a, "retry_failed", []int{500, 502, 503, 429}[rng.IntN(4)])
			}
			g.link(b, "retry_success", 200)
		default:
			g.link(a, "hedge_triggered", 0)
			if rng.IntN(2) == 0 {
				g.link(b, "hedge_launched", 0)
				g.link(b, "hedge_winner", 200)
				g.link(a, "hedge_loser_cancelled", 0)
			} else {
				g.link(b, "hedge_winner", 200)
			}
		}
		g.usage(endpoint)
	}
	g.endChain()
}

// usage fills tokens, cache columns and cost for a successful request.
func (g *reqGen) usage(endpoint string) {
	r, rng := g.row, g.rng
	r[cActualModel] = r[cModel]
	in := decades(rng, 1, 5)
	r[cInput] = in
	if endpoint == endpointCountTokens {
		r[cOutput] = int64(0)
		r[cCost] = zeroCost
		return
	}
	r[cOutput] = decades(rng, 0, 4)
	if rng.IntN(20) > 0 { // older rows have no cache columns at all
		var c5, c1 int64
		if rng.IntN(100) < 40 {
			c := decades(rng, 2, 5)
			if rng.IntN(4) == 0 {
				c1 = c
				r[cCacheTTL] = "1h"
			} else {
				c5 = c
				r[cCacheTTL] = "5m"
			}
		}
		r[cCache5m] = c5
		r[cCache1h] = c1
		r[cCacheCreation] = c5 + c1
		var read int64
		if rng.IntN(100) < 60 {
			read = decades(rng, 2, 5)
		}
		r[cCacheRead] = read
	}
	// Cost in units of 1e-15 USD, from a tenth of a cent to tens of dollars: above one dollar
	// the value has 16 or more significant digits, more than a spreadsheet keeps.
	units := g.rng.Int64N(pow10(12 + rng.IntN(5)))
	if rng.IntN(10) == 0 {
		units -= units % 1_000_000_000 // trailing zeros, like 0.000123000000000
	}
	r[cCost] = pgtype.Numeric{Int: big.NewInt(units), Exp: -15, Valid: true}
}

// decades returns a number spread evenly over the decades [10^lo, 10^hi): as many requests
// of tens of tokens as of thousands. Integer arithmetic only, so that every platform generates
// the same rows (math.Exp and math.Log are assembly on some and not others).
func decades(rng *rand.Rand, lo, hi int) int64 {
	base := pow10(lo + rng.IntN(hi-lo))
	return base + rng.Int64N(9*base)
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// link appends one provider_chain element; status 0 leaves statusCode out.
func (g *reqGen) link(p *provider, reason string, status int) {
	if len(g.chain) == 0 {
		g.chain = append(g.chain, '[')
	} else {
		g.chain = append(g.chain, ',')
	}
	g.chain = append(g.chain, p.chainHead...)
	g.chain = append(g.chain, `,"reason":"`...)
	g.chain = append(g.chain, reason...)
	g.chain = append(g.chain, '"')
	if status != 0 {
		g.chain = append(g.chain, `,"statusCode":`...)
		g.chain = strconv.AppendInt(g.chain, int64(status), 10)
	}
	g.chain = append(g.chain, '}')
	g.finalProvider = p.id
}

func (g *reqGen) endChain() {
	if len(g.chain) > 0 {
		g.chain = append(g.chain, ']')
		g.row[cChain] = g.chain
	}
}

// requestSource streams message_request rows to pgx's CopyFrom.
type requestSource struct{ g *reqGen }

func (s *requestSource) Next() bool {
	if s.g.i >= s.g.n {
		return false
	}
	s.g.next()
	return true
}

func (s *requestSource) Values() ([]any, error) { return s.g.row, nil }
func (s *requestSource) Err() error             { return nil }

// ledgerSource regenerates the requests and streams the usage_ledger rows CCH's trigger would
// have written for them: one per billed request (warmups included, marked by blocked_by), none
// for count_tokens or compact.
type ledgerSource struct {
	g   *reqGen
	row []any
	m   []int // ledger column -> request column, or -1
	id  int32
}

func newLedgerSource(g *reqGen) *ledgerSource {
	idx := make(map[string]int, len(requestColumns))
	for i, c := range requestColumns {
		idx[c] = i
	}
	s := &ledgerSource{g: g, row: make([]any, len(ledgerColumns)), m: make([]int, len(ledgerColumns))}
	for i, c := range ledgerColumns {
		if j, ok := idx[c]; ok && c != "id" {
			s.m[i] = j
		} else {
			s.m[i] = -1
		}
	}
	return s
}

func (s *ledgerSource) Next() bool {
	for s.g.i < s.g.n {
		s.g.next()
		if s.g.billed {
			s.fill()
			return true
		}
	}
	return false
}

func (s *ledgerSource) fill() {
	req := s.g.row
	s.id++
	for i, j := range s.m {
		if j >= 0 {
			s.row[i] = req[j]
		}
	}
	s.row[lID] = s.id
	s.row[lRequestID] = req[cID]
	s.row[lFinalProvider] = s.g.finalProvider
	msg, _ := req[cErrorMessage].(string)
	success := msg == ""
	s.row[lIsSuccess] = success
	// CCH computes success_rate_outcome in SQL; this keeps its gist: unknown until the request
	// has a status, nothing for requests CCH itself blocked.
	switch {
	case req[cStatus] == nil || req[cBlockedBy] != nil:
		s.row[lOutcome] = nil
	case success:
		s.row[lOutcome] = "success"
	default:
		s.row[lOutcome] = "failure"
	}
}

func (s *ledgerSource) Values() ([]any, error) { return s.row, nil }
func (s *ledgerSource) Err() error             { return nil }
