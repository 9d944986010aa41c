// Package nomadjob is the "nomad-job" scale target: it scales a task group
// of a Nomad job by setting its count.
//
// This file holds the target's settings, their defaults and validation,
// which run when a policy loads. The runtime that performs scale actions
// through Nomad's API is not part of this package yet. This package must
// never contact Nomad while validating.
package nomadjob

import (
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// Name is the plugin name used in `target "nomad-job" { ... }`.
const Name = "nomad-job"

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
}

type configHCL struct {
	Job       hcl.Expression `hcl:"job,optional"`
	Group     hcl.Expression `hcl:"group,optional"`
	Namespace hcl.Expression `hcl:"namespace,optional"`
	Region    hcl.Expression `hcl:"region,optional"`
}

// idRE accepts Nomad job IDs, group, namespace and region names: printable,
// without whitespace or the characters Nomad's API paths cannot carry.
var idRE = regexp.MustCompile(`^[^\s/?#%]{1,128}$`)

// Spec validates nomad-job settings.
var Spec policies.TargetSpec = policies.TargetFunc(Decode)

// Decode validates the body of a nomad-job target block.
func Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	var h configHCL
	diags := gohcl.DecodeBody(body, nil, &h)
	if diags.HasErrors() {
		return nil, diags
	}
	cfg := &Config{}
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
		*f.dst = v
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}
