package builtin_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/plugins/target"
	_ "github.com/foreshape/foreshape/plugins/target/builtin"
	"github.com/foreshape/foreshape/policies"
)

// Every plugin the policy language knows has a runtime under the same
// name, built from the settings its spec decodes.
func TestEveryPolicyTargetHasARuntime(t *testing.T) {
	if fmt.Sprint(target.Names()) != fmt.Sprint(policies.Targets()) {
		t.Fatalf("runtimes %v, policy targets %v", target.Names(), policies.Targets())
	}
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range policies.Targets() {
		if _, err := target.New(name, "not the plugin's settings", target.Env{Nomad: client}); err == nil {
			t.Errorf("%s: built from settings of the wrong type", name)
		}
	}
	if _, err := target.New("no-such-plugin", nil, target.Env{}); err == nil {
		t.Error("built an unknown plugin")
	}
}

// An unknown argument in a target block is reported with the block's other
// problems, not instead of them.
func TestUnknownArgumentHidesNothing(t *testing.T) {
	tests := map[string]struct{ body, other string }{
		"nomad-job": {`jobb = "web"` + "\n" + `group = "a b"`, "scale.x.target.nomad-job.job"},
		"exec":      {`comand = ["true"]` + "\n" + `timeout = "-1s"`, "scale.x.target.exec.command"},
		"webhook":   {`uri = "http://x"` + "\n" + `method = "FETCH"`, "scale.x.target.webhook.url"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			file, diags := hclsyntax.ParseConfig([]byte(tt.body), "p.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			spec, _ := policies.LookupTarget(name)
			_, diags = spec.Decode(file.Body, "scale.x.target."+name)
			var unsupported, other bool
			for _, d := range diags {
				unsupported = unsupported || d.Summary == "Unsupported argument"
				other = other || strings.Contains(d.Error(), tt.other)
			}
			if !unsupported || !other || len(diags) < 3 {
				t.Errorf("diagnostics %v; want the unknown argument, %s and the other bad value", diags, tt.other)
			}
		})
	}
}
