package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/testenv"
)

type testTicket struct {
	UploadID  string            `json:"upload_id"`
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	ExpiresAt time.Time         `json:"expires_at"`
	SizeBytes int64             `json:"size_bytes"`
	SHA256    string            `json:"sha256"`
	Headers   map[string]string `json:"headers"`
	MaxBytes  int64             `json:"max_bytes"`
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ticket asks for an upload URL for data, declaring its size and SHA-256.
func (s *stack) ticket(data []byte) testTicket {
	s.t.Helper()
	r := s.do("POST", "/api/v1/restores/uploads", adminToken, map[string]any{"size_bytes": len(data), "sha256": sha256Hex(data)})
	var tk testTicket
	r.json(s.t, &tk)
	if r.status != 201 || tk.Method != "PUT" || tk.URL == "" || !strings.HasPrefix(tk.UploadID, "upl_") ||
		tk.SizeBytes != int64(len(data)) || tk.SHA256 != sha256Hex(data) || tk.Headers == nil {
		s.t.Fatalf("upload URL: %d %s", r.status, r.body)
	}
	return tk
}

// put PUTs body to a ticket's URL with the headers it names. A transport
// error is status -1: a server that refuses a request from its headers may
// close the connection while the body is still being sent.
func (s *stack) put(tk testTicket, body []byte) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest("PUT", tk.URL, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range tk.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// upload asks for an upload URL and PUTs data to it.
func (s *stack) upload(data []byte) string {
	s.t.Helper()
	tk := s.ticket(data)
	if status, body := s.put(tk, data); status != 200 {
		s.t.Fatalf("PUT upload: %d %s", status, body)
	}
	return tk.UploadID
}

// markerDump is a custom-format dump of a fresh database holding one table,
// swapped_marker: restored anywhere, it shows.
func markerDump(t *testing.T) []byte {
	t.Helper()
	dsn := emptyDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE TABLE public.swapped_marker (id int); INSERT INTO public.swapped_marker VALUES (1)")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pg_dump", "-Fc", "-d", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return out
}

// An upload link takes the declared file once: a longer, shorter or
// different body is refused and stores nothing, and once the file is there
// a second PUT (even of other bytes) is refused and the file stays.
func TestRestoreUploadLinkSingleUse(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	for _, backend := range []string{"local", "s3"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var opts []stackOpt
			if backend == "s3" {
				opts = append(opts, withS3(bucket, bucket.Endpoint), func(env map[string]string) { env["STORAGE_URL"] = "s3://" + bucket.Bucket + "/single" })
			}
			s := newStack(t, opts...)
			s.start("api")
			read := func(id string) []byte {
				t.Helper()
				if backend == "local" {
					b, err := os.ReadFile(filepath.Join(strings.TrimPrefix(s.env["STORAGE_URL"], "file://"), "uploads", id+".dump"))
					if os.IsNotExist(err) {
						return nil
					}
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
				out, err := s3Client(bucket).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket.Bucket, Key: aws.String("single/uploads/" + id + ".dump")})
				if err != nil {
					return nil
				}
				defer out.Body.Close()
				b, _ := io.ReadAll(out.Body)
				return b
			}

			data := append([]byte("PGDMP"), bytes.Repeat([]byte("dump bytes "), 4096)...)
			other := bytes.Clone(data)
			other[len(other)/2] ^= 1
			tk := s.ticket(data)
			if backend == "s3" && (tk.Headers["X-Amz-Checksum-Sha256"] == "" || tk.Headers["If-None-Match"] != "*") {
				t.Fatalf("S3 ticket headers %v", tk.Headers)
			}
			for name, body := range map[string][]byte{
				"bigger than declared":  append(bytes.Clone(data), "more"...),
				"shorter than declared": data[:len(data)-1],
				"other content":         other,
			} {
				if status, rb := s.put(tk, body); status != -1 && (status < 400 || status >= 500) {
					t.Errorf("%s: %d %s; want refused", name, status, rb)
				}
			}
			if got := read(tk.UploadID); got != nil {
				t.Fatalf("refused PUTs stored %d bytes", len(got))
			}
			if status, rb := s.put(tk, data); status != 200 {
				t.Fatalf("PUT: %d %s", status, rb)
			}
			want := map[string]int{"local": 409, "s3": 412}[backend]
			for name, body := range map[string][]byte{"same file": data, "other file": other} {
				status, rb := s.put(tk, body)
				for i := 0; status == -1 && i < 10; i++ { // reset while refused from the headers
					status, rb = s.put(tk, body)
				}
				if status != want || (backend == "local" && !strings.Contains(rb, "upload_link_used")) {
					t.Errorf("second PUT, %s: %d %s; want %d", name, status, rb, want)
				}
			}
			if got := read(tk.UploadID); !bytes.Equal(got, data) {
				t.Errorf("after a second PUT storage holds %d bytes, not the %d uploaded", len(got), len(data))
			}
		})
	}
}

// A dump changed in storage behind hubexport's back (an upload after its
// restore was accepted, or a backup's file) fails its restore with
// dump_checksum_mismatch before pg_restore runs: the hub is untouched.
func TestRestoreSwappedDump(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := strings.TrimPrefix(s.env["STORAGE_URL"], "file://")
	s.start("serve")
	swapped := markerDump(t)

	b := s.finish(s.backup(""), time.Minute)
	dump := s.checkBackup(b, "")
	up := s.upload(dump)
	var backupFile string
	for _, f := range filesUnder(t, dir) {
		if strings.HasPrefix(filepath.ToSlash(f), "backups/"+b.ID+"/") && !strings.HasSuffix(f, ".manifest.json") {
			backupFile = filepath.Join(dir, f)
		}
	}
	if backupFile == "" {
		t.Fatalf("no file of backup %s under %v", b.ID, filesUnder(t, dir))
	}
	for _, f := range []string{filepath.Join(dir, "uploads", up+".dump"), backupFile} {
		if err := os.WriteFile(f, swapped, 0o640); err != nil {
			t.Fatal(err)
		}
	}

	before := fingerprint(t, s.dsn)
	for _, params := range []map[string]any{
		{"upload_id": up, "clean_first": true},
		{"backup_job_id": b.ID, "clean_first": true},
	} {
		j := s.finish(s.restore(params), time.Minute)
		if j.Status != "failed" || j.Error == nil || j.Error.Code != "dump_checksum_mismatch" ||
			!strings.Contains(j.Error.Message, "nothing was restored") {
			t.Errorf("restore of a swapped dump %v: %s %+v", params, j.Status, j.Error)
		}
		after := fingerprint(t, s.dsn)
		if _, ok := after["public.swapped_marker"]; ok {
			t.Fatalf("the swapped dump was restored into the hub (%v)", params)
		}
		sameTables(t, after, before)
	}
}

// hubexport export restore --upload FILE declares the file's size and
// SHA-256, PUTs it with the headers the ticket names, and restores it.
func TestCLIRestoreUpload(t *testing.T) {
	t.Parallel()
	bucket := testenv.NewS3(t)
	for _, backend := range []string{"local", "s3"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var opts []stackOpt
			if backend == "s3" {
				opts = append(opts, withS3(bucket, bucket.Endpoint), func(env map[string]string) { env["STORAGE_URL"] = "s3://" + bucket.Bucket + "/cli" })
			}
			s := newStack(t, opts...)
			s.start("serve")
			b := s.finish(s.backup(""), time.Minute)
			dump := s.checkBackup(b, "")
			dir := t.TempDir()
			file := filepath.Join(dir, "hub.dump")
			if err := os.WriteFile(file, dump, 0o600); err != nil {
				t.Fatal(err)
			}
			target := emptyDatabase(t)
			r := cli(t, dir, nil, "restore", "--server", s.base, "--token", adminToken, "--upload", file,
				"--target-database-url", target, "--skip-logs", "--wait")
			if r.code != 0 || !strings.Contains(r.stderr, "uploaded "+file+" as upl_") || !strings.Contains(r.stderr, sha256Hex(dump)) {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			if got := fingerprint(t, target); got["public.users"].Rows == 0 {
				t.Errorf("nothing restored: %v", got)
			}
		})
	}
	r := cli(t, t.TempDir(), nil, "restore", "--server", "http://127.0.0.1:1", "--token", adminToken, "--upload", "x.dump", "--upload-id", "upl_0123456789abcdef0123456789abcdef")
	if r.code != 2 || !strings.Contains(r.stderr, "--upload") {
		t.Errorf("--upload with --upload-id: exit %d, %s", r.code, r.stderr)
	}
}
