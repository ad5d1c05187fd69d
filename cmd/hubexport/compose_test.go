package main

import (
	"os"
	"os/exec"
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
