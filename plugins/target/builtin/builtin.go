// Package builtin registers foreshape's built-in scale target plugins
// ("nomad-job", "webhook", "exec") with the policy language. Import it for
// its side effect wherever policies are loaded:
//
//	import _ "github.com/foreshape/foreshape/plugins/target/builtin"
//
// It must never hold logic of its own: it only registers.
package builtin

import (
	"github.com/foreshape/foreshape/plugins/target/exec"
	"github.com/foreshape/foreshape/plugins/target/nomadjob"
	"github.com/foreshape/foreshape/plugins/target/webhook"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	policies.RegisterTarget(nomadjob.Name, nomadjob.Spec)
	policies.RegisterTarget(webhook.Name, webhook.Spec)
	policies.RegisterTarget(exec.Name, exec.Spec)
}
