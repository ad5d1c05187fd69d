package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMaskHeaderValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, value, want string }{
		{"authorization", "Bearer sk-abcdefghijklmnop", "Bearer sk-a******mnop"},
		{"Authorization", "bearer sk-abcdefghijklmnop", "Bearer sk-a******mnop"},
		{"authorization", "Bearer short", "Bearer [REDACTED]"},
		{"authorization", "Basic dXNlcjpwYXNzd29yZA==", "Basic [REDACTED]"},
		{"authorization", "Bearer sk-a******mnop", "Bearer sk-a******mnop"},
		{"authorization", "Basic [REDACTED]", "Basic [REDACTED]"},
		{"authorization", "tokenwithoutscheme", "toke******heme"},
		{"proxy-authorization", "Bearer abcdefghijkl", "Bearer abcd******ijkl"},
		{"x-api-key", "sk-ant-api03-0123456789", "sk-a******6789"},
		{"X-Api-Key", "12345678", "[REDACTED]"},
		{"x-api-key", "123456789", "1234******6789"},
		{"api-key", "azure-key-0000000000", "azur******0000"},
		{"anthropic-api-key", "sk-ant-9999999999", "sk-a******9999"},
		{"x-goog-api-key", "AIzaSyA-0123456789", "AIza******6789"},
		{"x-auth-token", "tok", "[REDACTED]"},
		{"cookie", "session=abcdef; theme=dark", "sess******dark"},
		{"set-cookie", "id=1", "[REDACTED]"},
		{"x-api-key", "[REDACTED]", "[REDACTED]"},
		{"x-api-key", "sk-a******6789", "sk-a******6789"},
		{"x-api-key", "密钥密钥密钥密钥密钥", "密钥密钥******密钥密钥"},
		{"content-type", "application/json; charset=utf-8", "application/json; charset=utf-8"},
		{"user-agent", "claude-cli/1.0.0", "claude-cli/1.0.0"},
	} {
		if got := MaskHeaderValue(c.name, c.value); got != c.want {
			t.Errorf("MaskHeaderValue(%q, %q) = %q, want %q", c.name, c.value, got, c.want)
		}
	}
}

func TestMaskHeadersKeepsOrderAndOtherValues(t *testing.T) {
	t.Parallel()
	in := `{"x-api-key":"sk-ant-api03-0123456789","content-type":"application/json","Authorization":"Bearer abcdefghijkl","x-n":["a"],"cookie":"a<b>&\u2028c=0123456789"}`
	got, err := MaskHeaders(json.RawMessage(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"x-api-key":"sk-a******6789","content-type":"application/json","Authorization":"Bearer abcd******ijkl","x-n":["a"],"cookie":"a<b>******6789"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, _ := MaskHeaders(nil); got != nil {
		t.Errorf("absent headers: %s", got)
	}
}

func TestParseSessionRequestParams(t *testing.T) {
	t.Parallel()
	p, err := ParseSessionRequestParams(json.RawMessage(`{"session_id":"  sess_0123456789  "}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.SessionID != "sess_0123456789" || p.View != SessionViewAfter || p.Sequence != nil || p.WholeSession {
		t.Errorf("defaults: %+v", p)
	}
	p, err = ParseSessionRequestParams(json.RawMessage(`{"session_id":"s","sequence":3,"view":"before"}`))
	if err != nil || *p.Sequence != 3 || p.View != SessionViewBefore {
		t.Errorf("sequence and view: %+v %v", p, err)
	}
	p, err = ParseSessionRequestParams(json.RawMessage(`{"session_id":"s","whole_session":true}`))
	if err != nil || !p.WholeSession {
		t.Errorf("whole session: %+v %v", p, err)
	}
	if _, err := ParseSessionRequestParams(json.RawMessage(`{"session_id":"` + strings.Repeat("会", 64) + `"}`)); err != nil {
		t.Errorf("64 characters: %v", err)
	}
	for raw, field := range map[string]string{
		`{}`:                   "params.session_id",
		`{"session_id":"   "}`: "params.session_id",
		`{"session_id":5}`:     "params.session_id",
		`{"session_id":"` + strings.Repeat("s", 65) + `"}`:     "params.session_id",
		`{"session_id":"s","sequence":0}`:                      "params.sequence",
		`{"session_id":"s","sequence":1.5}`:                    "params.sequence",
		`{"session_id":"s","sequence":"1"}`:                    "params.sequence",
		`{"session_id":"s","view":"middle"}`:                   "params.view",
		`{"session_id":"s","whole_session":"yes"}`:             "params.whole_session",
		`{"session_id":"s","whole_session":true,"sequence":2}`: "params.sequence",
		`{"session_id":"s","seq":1}`:                           "params.seq",
	} {
		_, err := ParseSessionRequestParams(json.RawMessage(raw))
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || e.Fields[field] == "" {
			t.Errorf("%s: got %v, want an error naming %s", raw, err, field)
		}
	}
}

func TestSessionRequestFilename(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    SessionRequestParams
		want string
	}{
		{SessionRequestParams{SessionID: "sess_0123456789abcdef"}, "session-sess_012-request.json"},
		{SessionRequestParams{SessionID: "sess_0123456789abcdef", Sequence: ptr[int64](7)}, "session-sess_012-seq-7-request.json"},
		{SessionRequestParams{SessionID: "abc", Sequence: ptr[int64](12)}, "session-abc-seq-12-request.json"},
		{SessionRequestParams{SessionID: "会话会话会话会话会话"}, "session-会话会话会话会话-request.json"},
		{SessionRequestParams{SessionID: "sess_0123456789abcdef", WholeSession: true}, "session-sess_012-request.json"},
	} {
		if got := SessionRequestFilename(c.p); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
	j := &Job{Params: json.RawMessage(`{"session_id":"sess_abcdefgh_x","sequence":2,"view":"after"}`)}
	if got := SessionRequestSpec().Filename(j, j.CreatedAt); got != "session-sess_abc-seq-2-request.json" {
		t.Errorf("spec filename %q", got)
	}
}

func TestWriteSessionRequest(t *testing.T) {
	t.Parallel()
	r := SessionRequest{
		Sequence: 3,
		Body:     json.RawMessage(`{"model":"claude-x","messages":[{"role":"user","content":"[REDACTED]"}],"stream":true,"empty":[],"obj":{}}`),
		Messages: json.RawMessage(`[{"role":"user","content":"[REDACTED]"}]`),
		Headers:  json.RawMessage(`{"x-api-key":"sk-ant-api03-0123456789","content-type":"application/json"}`),
		Meta:     json.RawMessage(`{"clientUrl":"https://hub/v1/messages","upstreamUrl":"https://up/v1/messages?key=abc******","method":"POST"}`),
	}
	var b bytes.Buffer
	if err := WriteSessionRequest(&b, "sess_\"x\"", "after", r); err != nil {
		t.Fatal(err)
	}
	want := `{
  "sessionId": "sess_\"x\"",
  "sequence": 3,
  "view": "after",
  "request": {
    "body": {
      "model": "claude-x",
      "messages": [
        {
          "role": "user",
          "content": "[REDACTED]"
        }
      ],
      "stream": true,
      "empty": [],
      "obj": {}
    },
    "messages": [
      {
        "role": "user",
        "content": "[REDACTED]"
      }
    ],
    "headers": {
      "x-api-key": "sk-a******6789",
      "content-type": "application/json"
    },
    "meta": {
      "clientUrl": "https://hub/v1/messages",
      "upstreamUrl": "https://up/v1/messages?key=abc******",
      "method": "POST"
    }
  },
  "specialSettings": null
}`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	r.Messages, r.Meta, r.SpecialSettings = nil, nil, json.RawMessage(`[{"type":"x"}]`)
	if err := WriteSessionRequests(&b, "s", "before", []SessionRequest{r}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SessionID string `json:"sessionId"`
		View      string `json:"view"`
		Requests  []struct {
			Sequence        int64           `json:"sequence"`
			Request         map[string]any  `json:"request"`
			SpecialSettings json.RawMessage `json:"specialSettings"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SessionID != "s" || doc.View != "before" || len(doc.Requests) != 1 || doc.Requests[0].Sequence != 3 ||
		doc.Requests[0].Request["messages"] != nil || string(bytes.Join(bytes.Fields(doc.Requests[0].SpecialSettings), nil)) != `[{"type":"x"}]` {
		t.Errorf("whole session: %s", b.String())
	}
}
