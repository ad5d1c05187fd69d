package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HubRedisURL != c.RedisURL || c.StorageURL != "file://./data/exports" || c.MaxActiveJobs != 3 ||
		c.ArtifactRetention != 7*24*time.Hour || c.DownloadLinkTTL != 15*time.Minute || c.HTTPAddr != ":8080" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ADMIN_TOKEN_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "s3cret-token" {
		t.Fatalf("admin token %q", c.AdminToken)
	}
	_, err = Load(env(map[string]string{"ADMIN_TOKEN_FILE": f, "ADMIN_TOKEN": "x"}))
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set") {
		t.Fatalf("want both-set error, got %v", err)
	}
}

func TestErrorsNameEveryVariable(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{
		"DATABASE_URL":                  "mysql://x",
		"REDIS_URL":                     "http://x",
		"ARTIFACT_RETENTION":            "forever",
		"MAX_ACTIVE_JOBS_PER_PRINCIPAL": "0",
		"S3_FORCE_PATH_STYLE":           "maybe",
		"LOG_LEVEL":                     "loud",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "ARTIFACT_RETENTION", "MAX_ACTIVE_JOBS_PER_PRINCIPAL", "S3_FORCE_PATH_STYLE", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestDurationsAndRedaction(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ARTIFACT_RETENTION": "3d", "DATABASE_URL": "postgres://u:p%40ss@db1:5432,db2:5432/hub?sslmode=require"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ArtifactRetention != 72*time.Hour {
		t.Fatalf("retention %v", c.ArtifactRetention)
	}
	attrs := c.LogAttrs()
	for i, a := range attrs {
		if s, ok := a.(string); ok && (strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss")) {
			t.Fatalf("password leaked: %v", a)
		}
		if a == "database_url" && attrs[i+1] != "postgres://u:xxxxx@db1:5432,db2:5432/hub?sslmode=require" {
			t.Fatalf("database_url logged as %q", attrs[i+1])
		}
	}
}

// Every name the reader is asked for anywhere in the package's source (a
// string literal passed to one of reader's methods, with _FILE for secrets)
// must be in Variables(), which deployment files and the README are checked
// against; a variable read only under a condition would otherwise be missed.
func TestVariablesListsWhatLoadReads(t *testing.T) {
	t.Parallel()
	vars := map[string]bool{}
	for _, v := range Variables() {
		vars[v] = true
	}
	read := variablesInSource(t)
	if len(read) < 40 {
		t.Fatalf("found only %d variable names in the source (%v): the scan is broken", len(read), read)
	}
	for _, name := range read {
		if !vars[name] {
			t.Errorf("Load reads %s but Variables() does not list it", name)
		}
	}
	for v := range vars {
		if !slices.Contains(read, v) {
			t.Errorf("Variables() lists %s, which no reader call names", v)
		}
	}
}

// variablesInSource returns the string literals passed as first argument to
// a method of *reader in the package's non-test files (secret names twice:
// NAME and NAME_FILE).
func variablesInSource(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	methods := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
				continue
			}
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "reader" {
					methods[fn.Name.Name] = true
				}
			}
		}
	}
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	seen := map[string]bool{}
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !methods[sel.Sel.Name] || sel.Sel.Name == "fail" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil || !envName.MatchString(name) {
				return true
			}
			seen[name] = true
			if sel.Sel.Name == "secret" {
				seen[name+"_FILE"] = true
			}
			return true
		})
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestRestoreUploadMaxBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"": 5 << 30, "1048576": 1 << 20, "512MiB": 512 << 20, "5GiB": 5 << 30, "2 TiB": 2 << 40, "100B": 100} {
		c, err := Load(env(map[string]string{"RESTORE_UPLOAD_MAX_BYTES": in}))
		if err != nil || c.RestoreUploadMaxBytes != want {
			t.Errorf("RESTORE_UPLOAD_MAX_BYTES=%q: %d, %v; want %d", in, c.RestoreUploadMaxBytes, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "5GB", "lots", "1.5GiB", "99999999999TiB"} {
		_, err := Load(env(map[string]string{"RESTORE_UPLOAD_MAX_BYTES": in}))
		if err == nil || !strings.Contains(err.Error(), "RESTORE_UPLOAD_MAX_BYTES") || !strings.Contains(err.Error(), "GiB") {
			t.Errorf("RESTORE_UPLOAD_MAX_BYTES=%q: %v; want an error naming it", in, err)
		}
	}
}
