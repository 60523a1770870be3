package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: any input yields a valid configuration or a *LoadError whose
// problems each fit on one line; never a panic. A configuration that
// parses survives a round trip through yaml.Marshal unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "[]", "a: &a [*a]\n", "log: {<<: [*x]}\n", "\"a\\nb\": 1\n",
		"nfs:\n  exports:\n    - name: /e\n      anon_uid: !!int \"1\\n2\"\n",
		"cache: {nfs_attr_cache: {max_entries: 0x10, eviction: !!str lfu}}\n",
		"smb:\n  interfaces:\n    - {name: e, ip: '::1', link_speed_mbps: 1e4}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "f.yaml")
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LoadError with problems", err)
			}
			for _, p := range le.Problems {
				if strings.Contains(p.Error(), "\n") {
					t.Fatalf("problem spans lines: %q", p.Error())
				}
			}
			return
		}
		if errs := cfg.Validate(); errs != nil {
			t.Fatalf("Parse accepted a configuration that Validate rejects: %v", errs)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out, "marshaled")
		if err != nil {
			t.Fatalf("marshaled configuration does not parse: %v\n%s", err, out)
		}
		if d := Diff(cfg, again); len(d) != 0 {
			t.Fatalf("round trip changed %v", d)
		}
	})
}
