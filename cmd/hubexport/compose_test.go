package main

import (
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/hubexport/hubexport/internal/config"
)

// docker-compose.yml must parse, and every variable it gives a hubexport
// container must be one hubexport reads: a misspelt name would be ignored
// silently in production.
func TestComposeFileSetsOnlyKnownVariables(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	known := config.Variables()
	ours := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			if svc.Image == "" || !strings.Contains(svc.Image, ":") {
				t.Errorf("service %s: image %q should be pinned to a tag", name, svc.Image)
			}
			continue
		}
		ours++
		if len(svc.Command) == 0 || !slices.Contains([]string{"serve", "api", "worker", "scheduler", "migrate", "seed"}, svc.Command[0]) {
			t.Errorf("service %s runs %v, not a hubexport role", name, svc.Command)
		}
		if len(svc.Environment) == 0 {
			t.Errorf("service %s sets no environment", name)
		}
		for k := range svc.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("service %s sets %s, which hubexport does not read (it reads %s)", name, k, strings.Join(known, ", "))
			}
		}
	}
	if ours < 2 {
		t.Fatalf("found %d hubexport services, want the server and the seed", ours)
	}
}

// The compose file's one-shot seed runs on every "up": on a seeded
// database it must succeed without touching anything.
func TestSeedSkipIfSeeded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	cmd := exec.Command(binary, "seed", "--rows", "10", "--skip-if-seeded")
	cmd.Env = []string{"DATABASE_URL=" + hubDatabase(t), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "already holds hub data") {
		t.Fatalf("seed --skip-if-seeded: %v\n%s", err, out)
	}
	cmd = exec.Command(binary, "seed", "--rows", "10")
	cmd.Env = []string{"DATABASE_URL=" + hubDatabase(t), "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "seed") {
		t.Fatalf("seed into a seeded database succeeded: %s", out)
	}
}

// readmeCCHSnippet is the YAML block of README's "Deploying next to a real
// CCH": the service an operator pastes into CCH's docker-compose.yaml.
func readmeCCHSnippet(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Deploying next to a real CCH\n")
	if !ok {
		t.Fatal(`README has no "## Deploying next to a real CCH" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```yaml\n")
	if !ok {
		t.Fatal("the CCH section has no ```yaml block")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("the CCH section's yaml block does not end")
	}
	return []byte(block)
}

// composeDefaults fills in ${NAME:-default} as compose does when NAME is
// unset: the snippet read with a .env that sets none of them.
var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}`)

func composeDefaults(s string) string {
	return composeVar.ReplaceAllString(s, "$2")
}

// The README's service for CCH's compose file must parse, set only
// variables hubexport reads, give a configuration that loads, and be wired
// to CCH's services as hub-facts §9 describes them.
func TestReadmeCCHServiceSnippet(t *testing.T) {
	t.Parallel()
	var snippet struct {
		Services map[string]struct {
			Build struct {
				Context string            `yaml:"context"`
				Args    map[string]string `yaml:"args"`
			} `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Networks    []string          `yaml:"networks"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(readmeCCHSnippet(t), &snippet); err != nil {
		t.Fatalf("the README's CCH service does not parse: %v", err)
	}
	svc, ok := snippet.Services["hubexport"]
	if !ok || len(snippet.Services) != 1 {
		t.Fatalf("services %v, want only hubexport (CCH's file has the others)", snippet.Services)
	}
	if len(svc.Command) != 1 || !slices.Contains([]string{"serve", "api", "worker", "scheduler"}, svc.Command[0]) {
		t.Errorf("command %v is not a hubexport role", svc.Command)
	}
	if svc.Build.Context == "" || svc.Build.Args["PG_MAJOR"] != "18" {
		t.Errorf("build %+v, want this repository built with PG_MAJOR 18 (CCH's postgres:18)", svc.Build)
	}

	known := config.Variables()
	env := map[string]string{}
	for k, v := range svc.Environment {
		if !slices.Contains(known, k) {
			t.Errorf("sets %s, which hubexport does not read (it reads %s)", k, strings.Join(known, ", "))
		}
		env[k] = composeDefaults(v)
	}
	c, err := config.Load(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		t.Fatalf("the snippet's configuration does not load: %v", err)
	}

	// CCH's DSN: postgresql://${DB_USER}:${DB_PASSWORD}@postgres:5432/${DB_NAME}.
	dsn := svc.Environment["DATABASE_URL"]
	for _, v := range []string{"${DB_USER", "${DB_PASSWORD", "${DB_NAME"} {
		if !strings.Contains(dsn, v) {
			t.Errorf("DATABASE_URL %q does not use CCH's %s}", dsn, v)
		}
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || u.Host != "postgres:5432" || u.Path != "/claude_code_hub" || u.User.Username() != "postgres" {
		t.Errorf("DATABASE_URL with CCH's defaults is %q, want CCH's postgres service and database", c.DatabaseURL)
	}
	if hub := env["HUB_REDIS_URL"]; hub != "redis://redis:6379/0" {
		t.Errorf("HUB_REDIS_URL %q, want CCH's redis://redis:6379/0 (its backup lock and sessions)", hub)
	}
	if q, err := url.Parse(env["REDIS_URL"]); err != nil || q.Host != "redis:6379" || q.Path == "" || q.Path == "/" || q.Path == "/0" {
		t.Errorf("REDIS_URL %q, want hubexport's queues on another logical DB of CCH's redis", env["REDIS_URL"])
	}
	for _, dep := range []string{"postgres", "redis"} {
		if svc.DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("depends_on %s: %+v, want condition service_healthy", dep, svc.DependsOn[dep])
		}
	}
	if !slices.Contains(svc.Networks, "default") {
		t.Errorf("networks %v, want CCH's default network", svc.Networks)
	}
	for _, v := range svc.Volumes {
		name, _, _ := strings.Cut(v, ":")
		if _, ok := snippet.Volumes[name]; !ok && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "/") {
			t.Errorf("volume %s is not declared under volumes:", name)
		}
	}
}

// The image's client tools come from Debian's packages or the official
// postgres image, never from an apt repository or a download the build
// fetches: the runtime stage adds no package source and fetches no URL.
func TestDockerfileRuntimeFetchesNoPackageSource(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stage []string // the last stage's instructions, comments left out
	var from string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if f, ok := strings.CutPrefix(trimmed, "FROM "); ok {
			from, stage = strings.Fields(f)[0], nil
		}
		stage = append(stage, trimmed)
	}
	if !strings.HasPrefix(from, "postgres:") && !strings.HasPrefix(from, "debian:") {
		t.Errorf("runtime stage FROM %s, want the official postgres image or Debian", from)
	}
	body := strings.Join(stage, "\n")
	for _, bad := range []string{"sources.list", "apt-key", "signed-by", "curl ", "wget ", "http://", "https://", "ADD "} {
		if strings.Contains(body, bad) {
			t.Errorf("runtime stage contains %q: it must not fetch a package source at build time\n%s", bad, body)
		}
	}
}
