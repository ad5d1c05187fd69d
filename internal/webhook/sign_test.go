package webhook

import (
	"testing"
	"time"
)

func TestSign(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, secret, id string
		ts               int64
		body             string
		want             string
	}{
		// The Standard Webhooks reference libraries' vector.
		{"spec vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
			`{"test": 2432232314}`, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		// Computed with: printf 'msg_2.1700000000.{"type":"webhook.test"}' |
		//   openssl dgst -sha256 -mac HMAC -macopt hexkey:<hex of the key> -binary | base64
		{"openssl vector", "whsec_aHViZXhwb3J0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=", "msg_2", 1700000000,
			`{"type":"webhook.test"}`, "v1,G4pVp8Saf1OJv9U/ZY93uhsQXwp9N4SRAOCIsx61I40="},
	}
	for _, c := range cases {
		got, err := Sign(c.secret, c.id, time.Unix(c.ts, 0), []byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: signature %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, secret, id string }{
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1"},
		{"not base64", "whsec_***", "msg_1"},
		{"dot in id", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg.1"},
	}
	for _, c := range cases {
		if _, err := Sign(c.secret, c.id, time.Unix(1, 0), nil); err == nil {
			t.Errorf("%s: signed", c.name)
		}
	}
}

func TestSignatureHeaderDuringRotation(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got, err := SignatureHeader([]string{"whsec_aHViZXhwb3J0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := Sign("whsec_aHViZXhwb3J0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=", "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if want := first + " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
}
