package policies_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// registered numbers the plugins the tests register: the registry is
// global and refuses a name twice, and a test may run more than once in a
// process (go test -count=N).
var registered atomic.Int64

// uniqueName returns name with a number no other registration used.
func uniqueName(name string) string { return fmt.Sprintf("%s-%d", name, registered.Add(1)) }

// recordingTarget is a target plugin that checks one setting and records
// the prefix it was given.
type recordingTarget struct{ prefixes []string }

func (r *recordingTarget) Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	r.prefixes = append(r.prefixes, prefix)
	var h struct {
		Size hcl.Expression `hcl:"size,optional"`
	}
	diags := gohcl.DecodeBody(body, nil, &h)
	if diags.HasErrors() {
		return nil, diags
	}
	n, ok, d := hclfield.Int(h.Size, prefix+".size")
	if ok && n > 10 {
		d = append(d, hclfield.Invalid(h.Size.Range(), prefix+".size", "%d is too big.", n))
	}
	return n, d
}

func TestRegisteredTargetValidatesAtLoad(t *testing.T) {
	rec := &recordingTarget{}
	name := uniqueName("test-recorder")
	policies.RegisterTarget(name, rec)

	src := func(size string) []byte {
		return []byte(`shaping "p" {
  locality {
    datacenter = "dc1"
  }
  scale "s" {
    min = 0
    max = 1
    target "` + name + `" {
      size = ` + size + `
    }
  }
}
`)
	}
	ps, diags := policies.Parse("ok.hcl", src("3"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := ps[0].Scales[0].Target; got.Plugin != name || got.Config != 3 {
		t.Errorf("target = %+v, want the plugin's decoded value 3", got)
	}
	if len(rec.prefixes) != 1 || rec.prefixes[0] != "scale.s.target."+name {
		t.Errorf("prefixes = %q", rec.prefixes)
	}

	_, diags = policies.Parse("bad.hcl", src("30"))
	if !diags.HasErrors() || diags[0].Summary != "Invalid scale.s.target."+name+".size" || diags[0].Subject.Start.Line != 9 {
		t.Errorf("want the plugin's own error at bad.hcl:9, got %v", diags)
	}

	found := false
	for _, n := range policies.Targets() {
		found = found || n == name
	}
	if !found {
		t.Errorf("Targets() = %q lacks the registered plugin", policies.Targets())
	}
}

func TestRegisterTargetTwicePanics(t *testing.T) {
	name := uniqueName("test-twice")
	policies.RegisterTarget(name, policies.TargetFunc(func(hcl.Body, string) (any, hcl.Diagnostics) { return nil, nil }))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), name) {
			t.Errorf("recover() = %v, want a panic naming the plugin", r)
		}
	}()
	policies.RegisterTarget(name, policies.TargetFunc(func(hcl.Body, string) (any, hcl.Diagnostics) { return nil, nil }))
}

func TestBuiltinTargetsRegistered(t *testing.T) {
	for _, name := range []string{"nomad-job", "webhook", "exec"} {
		if _, ok := policies.LookupTarget(name); !ok {
			t.Errorf("built-in target %q is not registered", name)
		}
	}
}
