// Package policies is foreshape's policy language: the schema of
// `shaping "NAME" { ... }` blocks, their parser, their validation, and the
// typed policies the forecast loop and the planner consume.
//
// docs/policies.md is the operator's reference: every block and setting
// with its type, default and allowed values, how several policies and
// files combine, and what the agent and `foreshape policy validate` say
// when a policy is refused.
//
// A policy file holds one or more shaping blocks:
//
//	shaping "NAME" {
//	  forecast_only = BOOL                                    # dry run: plan, record, change nothing
//	  locality { datacenter, node_pool, node_class }          # required; "*" or omitted = any
//	  forecast { model, horizon, step, history, seasonality, quantile, queries }
//	  headroom { cpu, memory }                                # percent free, [0,100)
//	  reserve  { enabled, priority, lead_time, ttl, max_cpu, max_memory }
//	  migrate  { max_parallel, strategy, lead_time, rebalance, spread, spread_by_use, targets,
//	             priority { relieve_hotspot, critical, age } }
//	  scale "NAME" { min, max, cooldown, target "PLUGIN" { ... } }   # repeatable
//	  schedule "NAME" { cron, time_zone, duration, action, localities, nodes, factor }  # repeatable
//	}
//
// Omitted blocks and attributes take safe defaults (see the Default
// constants and each type's fields): model "auto", horizon 1h on a 1m step
// over a day of history (what the series store keeps at 1m; 14d at a step
// that is a multiple of 5m; cut to whole steps), seasonality "auto", planning quantile 0.9, 20%
// headroom on every resource, reservations off, two migrations at a time
// per locality with the "reschedule" strategy, drain schedules' migration
// requests created reserve.lead_time before their window, no rebalancing
// or spreading, moves to any other policy's locality that shares no node
// with the locality the work leaves, and acting
// (forecast_only false). Durations are strings with
// the units of time.ParseDuration plus "d" and "w" ("90s", "1h30m", "7d").
// Cron expressions are parsed by github.com/hashicorp/cronexpr and read in
// UTC, or in the schedule's time_zone. One that can never fire is refused, and one whose windows overlap
// (a duration longer than the time between two starts) is warned of; one
// whose times are all past (a one-off window with a year, once over) is
// only warned of, by the start checks (agent/preflight), which have a
// clock.
//
// Loading goes decode → validate → translate: the HCL-shaped decode
// structs (decode.go) keep every setting as an hcl.Expression so that each
// semantic error is an hcl.Diagnostic pointing at the offending expression
// and naming the field ("Invalid forecast.quantile" at
// policy.hcl:12,16-19), like a syntax error. Scale target plugins
// ("nomad-job", "webhook", "exec", registered by importing
// plugins/target/builtin) validate their own settings through the registry
// in target.go when the policy loads, not when they first act.
//
// This package must never perform I/O beyond reading the policy files it is
// given, never read the clock (Schedule.Windows takes its time range as
// arguments), never log, and never import a plugin: plugins register
// themselves here, not the other way round.
package policies
