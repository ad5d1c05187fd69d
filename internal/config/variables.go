package config

import "sort"

// Variables lists every environment variable Load reads (secrets with and
// without _FILE), so deployment files can be checked against it.
func Variables() []string {
	seen := map[string]bool{}
	_, _ = Load(func(name string) (string, bool) {
		seen[name] = true
		return "", false
	})
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
