package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ChecksumError is a download whose size or SHA-256 differs from its job's:
// what the writer got is not the file.
type ChecksumError struct {
	JobID           string
	Size, WantSize  int64
	SHA256, WantSHA string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("the download does not match job %s: got %d bytes with SHA-256 %s, the job says %d bytes with SHA-256 %s",
		e.JobID, e.Size, e.SHA256, e.WantSize, e.WantSHA)
}

// Download writes the file of job (a succeeded job with a Result) to w,
// through a signed download link, and checks it against the job's size
// and SHA-256: on any error, what w got must be discarded. progress, when
// set, is called with the bytes written so far: with 0 once the file
// starts coming, then after each write.
func (c *Client) Download(ctx context.Context, job *Job, w io.Writer, progress func(written int64)) error {
	link, err := c.DownloadLink(ctx, job.ID)
	if err != nil {
		return err
	}
	return c.DownloadFrom(ctx, link, job, w, progress)
}

// DownloadLink asks for a signed link to job id's file, resolved against
// BaseURL. The link is a credential: show it only without its query.
func (c *Client) DownloadLink(ctx context.Context, id string) (*url.URL, error) {
	b, err := c.Call(ctx, http.MethodGet, "/api/v1/exports/"+url.PathEscape(id)+"/download?redirect=false", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("get the download link: %w", err)
	}
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(b, &link); err != nil || link.URL == "" {
		return nil, fmt.Errorf("get the download link: unexpected answer %.200q", b)
	}
	target, err := url.Parse(c.base() + "/")
	if err == nil {
		var ref *url.URL
		if ref, err = url.Parse(link.URL); err == nil {
			target = target.ResolveReference(ref)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("download link %q: %w", link.URL, err)
	}
	return target, nil
}

// DownloadFrom is Download with a link DownloadLink gave.
func (c *Client) DownloadFrom(ctx context.Context, link *url.URL, job *Job, w io.Writer, progress func(written int64)) error {
	if job.Result == nil {
		return fmt.Errorf("job %s has no file", job.ID)
	}
	// The link carries its own credential: the token is not sent with it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("download from %s: %w; %s", withoutQuery(link), redactURL(err), c.linkHint(link))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("download from %s: HTTP %d: %s", withoutQuery(link), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	h := sha256.New()
	dst := io.MultiWriter(w, h)
	if progress != nil {
		progress(0)
		dst = io.MultiWriter(dst, &progressWriter{report: progress})
	}
	n, err := io.Copy(dst, resp.Body)
	if err != nil {
		return fmt.Errorf("download: %w", redactURL(err))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != job.Result.SizeBytes || !strings.EqualFold(sum, job.Result.SHA256) {
		return &ChecksumError{JobID: job.ID, Size: n, SHA256: sum, WantSize: job.Result.SizeBytes, WantSHA: job.Result.SHA256}
	}
	return nil
}

type progressWriter struct {
	n      int64
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	p.report(p.n)
	return len(b), nil
}

type progressReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.report(p.n)
	}
	return n, err
}

// withoutQuery is a signed link without its query and fragment, which
// hold its signature: what may be shown.
func withoutQuery(u *url.URL) string {
	v := *u
	v.RawQuery, v.Fragment, v.User = "", "", nil
	return v.String()
}

// linkHint says where a download link that cannot be reached comes from.
func (c *Client) linkHint(link *url.URL) string {
	hint := "the server builds download links from its PUBLIC_URL (local storage) or S3_PUBLIC_ENDPOINT (S3 storage): set it to an address this machine can reach"
	api, err := url.Parse(c.base())
	if err != nil || api.Host == link.Host {
		return hint
	}
	port := link.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[link.Scheme]
	}
	return fmt.Sprintf("%s (the link points at %s port %s; the API answered at %s)", hint, link.Hostname(), port, c.base())
}

// redactURL drops a signed URL (a credential) from a transport error.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// uploadTicket is the answer of POST /restores/uploads.
type uploadTicket struct {
	UploadID string            `json:"upload_id"`
	URL      string            `json:"url"`
	Method   string            `json:"method"`
	Headers  map[string]string `json:"headers"`
}

// UploadDump uploads a database dump for a restore: it declares the dump's
// size and hex SHA-256 (the restore refuses any other bytes), then sends
// size bytes of r to the URL it gets, with the headers that URL asks for.
// It returns the upload id, for a database_restore's upload_id. name is
// the dump as errors call it; progress, when set, is called with the bytes
// sent so far: with 0 as the sending starts, then after each read.
func (c *Client) UploadDump(ctx context.Context, name string, r io.Reader, size int64, sum string, progress func(sent int64)) (string, error) {
	body, _ := json.Marshal(map[string]any{"size_bytes": size, "sha256": sum})
	raw, err := c.Call(ctx, http.MethodPost, "/api/v1/restores/uploads", body, nil)
	if err != nil {
		return "", fmt.Errorf("upload URL: %w", err)
	}
	var tk uploadTicket
	if err := json.Unmarshal(raw, &tk); err != nil || tk.UploadID == "" || tk.URL == "" {
		return "", fmt.Errorf("the API answered something that is not an upload URL: %.200q", raw)
	}
	if progress != nil {
		r = &progressReader{r: r, report: progress}
	}
	method := tk.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, tk.URL, r)
	if err != nil {
		return "", fmt.Errorf("upload: %w", redactURL(err))
	}
	// The URL is the credential: no token goes to the object store.
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	for k, v := range tk.Headers {
		req.Header.Set(k, v)
	}
	if progress != nil {
		progress(0)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("upload: %w", redactURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return "", fmt.Errorf("upload of %s refused: HTTP %d: %s", name, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return tk.UploadID, nil
}
