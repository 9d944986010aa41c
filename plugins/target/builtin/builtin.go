// Package builtin registers foreshape's built-in scale target plugins
// ("nomad-job", "webhook", "exec"): their settings with the policy language
// and their runtimes with package target, under the same names. Import it
// for its side effect wherever policies are loaded or targets are built:
//
//	import _ "github.com/foreshape/foreshape/plugins/target/builtin"
//
// It must never hold logic of its own: it only registers.
package builtin

import (
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/exec"
	"github.com/foreshape/foreshape/plugins/target/nomadjob"
	"github.com/foreshape/foreshape/plugins/target/webhook"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	policies.RegisterTarget(nomadjob.Name, nomadjob.Spec)
	policies.RegisterTarget(webhook.Name, webhook.Spec)
	policies.RegisterTarget(exec.Name, exec.Spec)
	target.Register(nomadjob.Name, nomadjob.New)
	target.Register(webhook.Name, webhook.New)
	target.Register(exec.Name, exec.New)
}
