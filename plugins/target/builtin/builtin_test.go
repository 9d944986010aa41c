package builtin_test

import (
	"fmt"
	"testing"

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
