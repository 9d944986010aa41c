// Package deploy holds what operators need to run foreshape on Nomad: the
// system job and the ACL policy its token needs. Its test only checks that
// the files are well-formed HCL with the expected shape; it must never
// contact a cluster.
package deploy

import (
	"os"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func parse(t *testing.T, path string) *hclsyntax.Body {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return f.Body.(*hclsyntax.Body)
}

func attr(t *testing.T, b *hclsyntax.Body, name string) string {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		t.Fatalf("attribute %s missing", name)
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags)
	}
	return v.AsString()
}

func TestSystemJob(t *testing.T) {
	b := parse(t, "foreshape.nomad.hcl")
	if len(b.Blocks) != 1 || b.Blocks[0].Type != "job" || b.Blocks[0].Labels[0] != "foreshape" {
		t.Fatalf("want one job \"foreshape\" block")
	}
	if got := attr(t, b.Blocks[0].Body, "type"); got != "system" {
		t.Errorf("job type = %q, want system", got)
	}
}

func TestACLPolicy(t *testing.T) {
	b := parse(t, "foreshape-acl.hcl")
	seen := map[string]bool{}
	for _, blk := range b.Blocks {
		seen[blk.Type] = true
		if p := attr(t, blk.Body, "policy"); p != "read" {
			t.Errorf("%s policy = %q: this release only reads", blk.Type, p)
		}
	}
	for _, want := range []string{"namespace", "node", "agent", "operator"} {
		if !seen[want] {
			t.Errorf("no %s rule", want)
		}
	}
}
