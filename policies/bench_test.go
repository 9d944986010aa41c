package policies_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/foreshape/foreshape/policies"
)

// BenchmarkParseExamples measures parsing and validating the example
// policies, which the agent does at start and on every reload.
func BenchmarkParseExamples(b *testing.B) {
	paths, err := filepath.Glob("examples/*.hcl")
	if err != nil || len(paths) == 0 {
		b.Fatal("no examples")
	}
	srcs := make([][]byte, len(paths))
	for i, p := range paths {
		if srcs[i], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		l := policies.NewLoader()
		for i, src := range srcs {
			if _, diags := l.Parse(paths[i], src); diags.HasErrors() {
				b.Fatal(diags.Error())
			}
		}
	}
}
