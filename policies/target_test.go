package policies_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

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
	policies.RegisterTarget("test-recorder", rec)

	src := func(size string) []byte {
		return []byte(`shaping "p" {
  locality {
    datacenter = "dc1"
  }
  scale "s" {
    min = 0
    max = 1
    target "test-recorder" {
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
	if got := ps[0].Scales[0].Target; got.Plugin != "test-recorder" || got.Config != 3 {
		t.Errorf("target = %+v, want the plugin's decoded value 3", got)
	}
	if len(rec.prefixes) != 1 || rec.prefixes[0] != "scale.s.target.test-recorder" {
		t.Errorf("prefixes = %q", rec.prefixes)
	}

	_, diags = policies.Parse("bad.hcl", src("30"))
	if !diags.HasErrors() || diags[0].Summary != "Invalid scale.s.target.test-recorder.size" || diags[0].Subject.Start.Line != 9 {
		t.Errorf("want the plugin's own error at bad.hcl:9, got %v", diags)
	}

	found := false
	for _, n := range policies.Targets() {
		found = found || n == "test-recorder"
	}
	if !found {
		t.Errorf("Targets() = %q lacks the registered plugin", policies.Targets())
	}
}

func TestRegisterTargetTwicePanics(t *testing.T) {
	policies.RegisterTarget("test-twice", policies.TargetFunc(func(hcl.Body, string) (any, hcl.Diagnostics) { return nil, nil }))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "test-twice") {
			t.Errorf("recover() = %v, want a panic naming the plugin", r)
		}
	}()
	policies.RegisterTarget("test-twice", policies.TargetFunc(func(hcl.Body, string) (any, hcl.Diagnostics) { return nil, nil }))
}

func TestBuiltinTargetsRegistered(t *testing.T) {
	for _, name := range []string{"nomad-job", "webhook", "exec"} {
		if _, ok := policies.LookupTarget(name); !ok {
			t.Errorf("built-in target %q is not registered", name)
		}
	}
}
