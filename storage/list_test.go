package storage

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestLocalListOlder(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	l := newLocal(t)
	age := func(key string, d time.Duration) {
		t.Helper()
		old := time.Now().Add(-d)
		if err := os.Chtimes(l.path(key), old, old); err != nil {
			t.Fatal(err)
		}
	}
	put(t, l, "uploads/old.dump", []byte("old"))
	age("uploads/old.dump", 3*time.Hour)
	put(t, l, "uploads/fresh.dump", []byte("fresh"))
	put(t, l, "backups/2026/old.dump", []byte("other prefix"))
	age("backups/2026/old.dump", 3*time.Hour)
	// An old unfinished write under the prefix is not an object.
	up, err := l.Create(ctx, "uploads/pending.dump", "")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort(ctx)
	tmp := up.(*localUpload).f.Name()
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}

	got, err := l.ListOlder(ctx, "uploads/", time.Now().Add(-time.Hour))
	if err != nil || fmt.Sprint(got) != "[uploads/old.dump]" {
		t.Fatalf("ListOlder(uploads/) = %v, %v; want [uploads/old.dump]", got, err)
	}
	all, err := l.ListOlder(ctx, "", time.Now().Add(-time.Hour))
	slices.Sort(all)
	if err != nil || fmt.Sprint(all) != "[backups/2026/old.dump uploads/old.dump]" {
		t.Fatalf("ListOlder(\"\") = %v, %v", all, err)
	}
	if got, err := l.ListOlder(ctx, "nothing-here/", time.Now()); err != nil || len(got) != 0 {
		t.Fatalf("ListOlder(missing dir) = %v, %v; want none", got, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("temp file touched: %v", err)
	}
}

func TestS3ListOlder(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	e := newS3(t, nil)
	put(t, e, "uploads/old.dump", []byte("old"))
	put(t, e, "backups/old.dump", []byte("other prefix"))
	if _, err := e.raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &e.env.Bucket, Key: aws.String("other-tenant/uploads/old.dump"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	// An unfinished multipart upload under the prefix is not an object.
	if _, err := e.raw.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &e.env.Bucket, Key: aws.String("tenant-a/uploads/pending.dump")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1100 * time.Millisecond)
	put(t, e, "uploads/fresh.dump", []byte("fresh"))

	got, err := e.ListOlder(ctx, "uploads/", cutoff)
	if err != nil || fmt.Sprint(got) != "[uploads/old.dump]" {
		t.Fatalf("ListOlder(uploads/) = %v, %v; want [uploads/old.dump]", got, err)
	}
	all, err := e.ListOlder(ctx, "", cutoff)
	slices.Sort(all)
	if err != nil || fmt.Sprint(all) != "[backups/old.dump uploads/old.dump]" {
		t.Fatalf("ListOlder(\"\") = %v, %v", all, err)
	}
	if got, err := e.ListOlder(ctx, "uploads/", time.Now().Add(-time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("ListOlder(an hour ago) = %v, %v; want none", got, err)
	}
}
