package policies_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/foreshape/foreshape/policies"
)

// FuzzParse checks that no input makes the parser panic, and that a parse
// without errors yields policies with the invariants consumers rely on.
// Run it with: go test ./policies -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("examples/*.hcl")
	more, _ := filepath.Glob("../command/testdata/golden/policy/*.hcl")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(validBuilder().build()))
	f.Fuzz(func(t *testing.T, src []byte) {
		ps, diags := policies.Parse("fuzz.hcl", src)
		if diags.HasErrors() {
			if ps != nil {
				t.Fatalf("policies returned with errors")
			}
			return
		}
		for _, p := range ps {
			fc := p.Forecast
			if fc.Step <= 0 || fc.Horizon < fc.Step || fc.Horizon%fc.Step != 0 || fc.History < fc.Horizon {
				t.Fatalf("invalid grid accepted: %+v", fc)
			}
			if fc.Quantile <= 0 || fc.Quantile >= 1 {
				t.Fatalf("quantile %v accepted", fc.Quantile)
			}
			if p.Migrate.MaxParallel < 1 {
				t.Fatalf("max_parallel %d accepted", p.Migrate.MaxParallel)
			}
			for _, s := range p.Scales {
				if s.Min < 0 || s.Min > s.Max || s.Max < 1 || s.Target.Config == nil {
					t.Fatalf("scale %+v accepted", s)
				}
			}
			for _, s := range p.Schedules {
				if s.Expr == nil || s.Duration <= 0 {
					t.Fatalf("schedule %+v accepted", s)
				}
			}
		}
	})
}
