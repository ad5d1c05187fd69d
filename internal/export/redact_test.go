package export

import (
	"strings"
	"testing"
)

// Every URL hubexport logs or shows (database, Redis, storage) goes through
// RedactURL; none may show the password s3cret.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:s3cret@db:5432/hub", "postgres://u:xxxxx@db:5432/hub"},
		{"postgres://u@db/hub", "postgres://u@db/hub"},
		{"postgres://db/hub?sslmode=require", "postgres://db/hub?sslmode=require"},
		{"postgres://u:s3cret@h1,h2/db", "postgres://u:xxxxx@h1,h2/db"},
		{"postgresql://u:p%40ss@h1:5432,h2:5433/hub?sslmode=require", "postgresql://u:xxxxx@h1:5432,h2:5433/hub?sslmode=require"},
		{"postgres://u:s3cret@[::1]:5432,h2/hub", "postgres://u:xxxxx@[::1]:5432,h2/hub"},
		{"postgres://u:a@s3cret@db/hub", "postgres://u:xxxxx@db/hub"},
		{"postgres://u:s3/cret@db/hub", "postgres://u:xxxxx@db/hub"},
		{"postgres://u:s3?cret@db/hub", "postgres://u:xxxxx@db/hub"},
		{"postgres://u:s3#cret@db/hub", "postgres://u:xxxxx@db/hub"},
		{"postgres:///hub?host=/run/pg&password=s3cret&user=u", "postgres:///hub?host=/run/pg&password=xxxxx&user=u"},
		{"postgres://db?pass%77ord=s3cret", "postgres://db?pass%77ord=xxxxx"},
		{"postgres://db/hub?sslpassword=s3cret&sslmode=verify-full", "postgres://db/hub?sslpassword=xxxxx&sslmode=verify-full"},
		{"postgres://db/hub?PASSWORD=s3cret", "postgres://db/hub?PASSWORD=xxxxx"},
		{"postgres://db/hub?pass%zz=1&password=s3cret", "postgres://db/hub?pass%zz=1&password=xxxxx"},
		{"redis://:s3cret@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"rediss://default:s3cret@cache:6380", "rediss://default:xxxxx@cache:6380"},
		{"s3://bucket/prefix", "s3://bucket/prefix"},
		{"file:///var/lib/hubexport", "file:///var/lib/hubexport"},
		{"https://minio:9000", "https://minio:9000"},
		{"not a url s3cret", "(unparsable URL)"},
		{"host=db user=u password=s3cret", "(unparsable URL)"},
		{"postgres:u:s3cret@db", "(unparsable URL)"},
	} {
		got := RedactURL(tc.in)
		if got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q shows the password", tc.in, got)
		}
	}
}
