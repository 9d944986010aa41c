// Package policies is foreshape's policy language: the schema of
// `shaping "NAME" { ... }` blocks, their parser, their validation, and the
// typed policies the forecast loop and the planner consume.
//
// A policy file holds one or more shaping blocks. Loading goes
// decode → validate → translate: the HCL-shaped decode structs (decode.go)
// keep every setting as an hcl.Expression so that each semantic error is an
// hcl.Diagnostic pointing at the offending expression and naming the field
// ("Invalid forecast.quantile" at policy.hcl:12,16-19), like a syntax error.
// Omitted blocks and attributes take the safe defaults documented on each
// type. Scale target plugins ("nomad-job", "webhook", "exec") validate their
// own settings through the registry in target.go when the policy loads, not
// when they first act.
//
// This package must never perform I/O beyond reading the policy files it is
// given, never read the clock (Schedule.Windows takes its time range as
// arguments), never log, and never import a plugin: plugins register
// themselves here, not the other way round.
package policies
