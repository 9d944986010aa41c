// Package nomadjob is the "nomad-job" scale target: it scales a task group
// of a Nomad job by setting its count through Nomad's scale endpoint.
//
// config.go holds the target's settings, their defaults and validation,
// which run when a policy loads; nomadjob.go is the runtime. This package
// must never contact Nomad while validating or building a target.
package nomadjob

import (
	"regexp"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// Name is the plugin name used in `target "nomad-job" { ... }`.
const Name = "nomad-job"

// Defaults.
const (
	// DefaultDeploymentWait is how long a scale action waits for an active
	// deployment of the job to end before it gives up as refused.
	DefaultDeploymentWait = 10 * time.Minute
	// MaxDeploymentWait bounds deployment_wait.
	MaxDeploymentWait = 2 * time.Hour
)

// Config is the validated settings of a nomad-job target.
type Config struct {
	// Job is the Nomad job ID to scale. Required.
	Job string
	// Group is the task group whose count changes. Required.
	Group string
	// Namespace is the job's namespace; empty means the agent's nomad
	// namespace.
	Namespace string
	// Region is the job's region; empty means the agent's nomad region.
	Region string
	// DeploymentWait is how long a scale action refused because a
	// deployment is active waits for it to end before retrying; past it
	// the action is refused. Default 10m.
	DeploymentWait time.Duration
}

type configHCL struct {
	Job       hcl.Expression `hcl:"job,optional"`
	Group     hcl.Expression `hcl:"group,optional"`
	Namespace hcl.Expression `hcl:"namespace,optional"`
	Region    hcl.Expression `hcl:"region,optional"`
	// DeploymentWait is "deployment_wait".
	DeploymentWait hcl.Expression `hcl:"deployment_wait,optional"`
}

// idRE accepts Nomad job IDs, group, namespace and region names: printable,
// without whitespace or the characters Nomad's API paths cannot carry.
var idRE = regexp.MustCompile(`^[^\s/?#%]{1,128}$`)

// Spec validates nomad-job settings.
var Spec policies.TargetSpec = policies.TargetFunc(Decode)

// Decode validates the body of a nomad-job target block.
func Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	var h configHCL
	// An unknown argument does not stop the checks of the known ones (the
	// decode still fills them): every problem is reported at once.
	diags := gohcl.DecodeBody(body, nil, &h)
	cfg := &Config{DeploymentWait: DefaultDeploymentWait}
	for _, f := range []struct {
		expr     hcl.Expression
		name     string
		dst      *string
		required bool
	}{
		{h.Job, "job", &cfg.Job, true},
		{h.Group, "group", &cfg.Group, true},
		{h.Namespace, "namespace", &cfg.Namespace, false},
		{h.Region, "region", &cfg.Region, false},
	} {
		field := prefix + "." + f.name
		if f.required {
			if d := hclfield.Required(f.expr, field); d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
		}
		v, ok, d := hclfield.NonEmptyString(f.expr, field)
		diags = append(diags, d...)
		if !ok {
			continue
		}
		if !idRE.MatchString(v) {
			diags = append(diags, hclfield.Invalid(f.expr.Range(), field,
				"%q is not a valid Nomad %s: no whitespace, '/', '?', '#' or '%%', at most 128 characters.", v, f.name))
			continue
		}
		if f.name == "namespace" && v == "*" {
			// Nomad reads "*" as every namespace in a list, and a scale
			// or a job read in it finds no job.
			diags = append(diags, hclfield.Invalid(f.expr.Range(), field,
				"\"*\" is every namespace, and a scale target changes one job: name the job's namespace."))
			continue
		}
		*f.dst = v
	}
	if v, ok, d := hclfield.Duration(h.DeploymentWait, prefix+".deployment_wait"); ok {
		if v <= 0 || v > MaxDeploymentWait {
			diags = append(diags, hclfield.Invalid(h.DeploymentWait.Range(), prefix+".deployment_wait",
				"%s is outside (0, %s].", hclfield.FormatDuration(v), hclfield.FormatDuration(MaxDeploymentWait)))
		} else {
			cfg.DeploymentWait = v
		}
	} else {
		diags = append(diags, d...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}
