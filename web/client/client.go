package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client calls one hubexport API. The zero value is not usable: BaseURL
// and Token are required.
type Client struct {
	// BaseURL is the API's address, such as http://localhost:8080.
	BaseURL string
	// Token is the admin token or a CCH API key.
	Token string
	// HTTPClient sends the requests; nil is http.DefaultClient. It needs
	// no timeout: each API call has a minute, an event stream ends when it
	// stays silent longer than the server's keep-alives allow.
	HTTPClient *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status int // the HTTP status
	// Code is the API's error code, such as "not_found"; "http_<status>"
	// for an answer that did not come from the API (a proxy's page).
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// callTimeout bounds one API call: none of them streams.
const callTimeout = time.Minute

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) base() string { return strings.TrimRight(c.BaseURL, "/") }

// Call sends one request to a route of the API (path such as
// "/api/v1/webhooks", with its query) with body as its JSON (nil: none),
// and returns the body of a 2xx answer or an *APIError. It is for the
// routes this package has no method of.
func (c *Client) Call(ctx context.Context, method, path string, body []byte, header http.Header) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(resp.StatusCode, b)
	}
	return b, nil
}

// callJSON is Call with in marshalled (nil: no body).
func (c *Client) callJSON(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	return c.Call(ctx, method, path, body, nil)
}

// answerError reads the API's error body; anything else (a proxy's page)
// is reported by its status and first bytes.
func answerError(status int, body []byte) *APIError {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return &APIError{Status: status, Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Code: "http_" + strconv.Itoa(status), Message: msg}
}

// transient reports whether trying again may help: the network failed or
// a proxy in front of the API said it is unavailable.
func transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
