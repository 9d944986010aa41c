package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/foreshape/foreshape/config"
)

// FuzzParse checks that no configuration source makes loading or
// validation panic. Run it with:
// go test ./config -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../command/testdata/golden/config/*.hcl")
	for _, p := range append(seeds, "../example.hcl") {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg := config.Default()
		diags := config.NewLoader().Parse(cfg, "fuzz.hcl", src)
		if diags.HasErrors() {
			return
		}
		_ = cfg.Validate()
		_ = cfg.HCL()
		if _, err := cfg.JSON(); err != nil {
			t.Fatal(err)
		}
	})
}
