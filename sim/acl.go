package sim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Policy is what the ACL policy of a token that is no management token
// grants, in the terms of Nomad's policies: namespace capabilities, in
// every namespace (a namespace "*" rule, the only form modelled), and the
// node, agent and operator policies ("read", "write", or "" or "deny" for
// none; "write" includes "read"). Nomad's anonymous token is the empty
// Policy.
type Policy struct {
	Capabilities []string
	Node         string
	Agent        string
	Operator     string
}

// namespaceCapabilities are the capabilities a namespace rule may list
// (Nomad's acl.isNamespaceCapabilityValid).
var namespaceCapabilities = map[string]bool{
	"deny": true, "list-jobs": true, "parse-job": true, "read-job": true, "submit-job": true, "dispatch-job": true,
	"read-logs": true, "read-fs": true, "alloc-exec": true, "alloc-node-exec": true, "alloc-lifecycle": true,
	"sentinel-override": true, "csi-register-plugin": true, "csi-write-volume": true, "csi-read-volume": true,
	"csi-list-volume": true, "csi-mount-volume": true, "host-volume-create": true, "host-volume-register": true,
	"host-volume-read": true, "host-volume-write": true, "host-volume-delete": true, "list-scaling-policies": true,
	"read-scaling-policy": true, "read-job-scaling": true, "scale-job": true, "submit-recommendation": true,
	"register-job": true, "revert-job": true, "deregister-job": true, "purge-job": true, "evaluate-job": true,
	"plan-job": true, "tag-job-version": true, "stable-job": true, "fail-deployment": true, "pause-deployment": true,
	"promote-deployment": true, "unblock-deployment": true, "cancel-deployment": true,
	"set-alloc-health-deployment": true, "gc-allocation": true, "pause-allocation": true, "force-periodic-job": true,
	"delete-service-registration": true,
}

// validate reports the first thing in p that Nomad would not take as a
// policy.
func (p Policy) validate() error {
	for _, c := range p.Capabilities {
		if !namespaceCapabilities[c] {
			return fmt.Errorf("invalid namespace capability %q", c)
		}
	}
	for _, s := range []struct{ name, v string }{{"node", p.Node}, {"agent", p.Agent}, {"operator", p.Operator}} {
		switch s.v {
		case "", "deny", "read", "write":
		default:
			return fmt.Errorf("invalid %s policy %q: want read, write or deny", s.name, s.v)
		}
	}
	return nil
}

// has reports whether p grants any of the namespace capabilities caps
// ("deny" in the rule denies them all).
func (p *Policy) has(caps ...string) bool {
	if slices.Contains(p.Capabilities, "deny") {
		return false
	}
	for _, c := range caps {
		if slices.Contains(p.Capabilities, c) {
			return true
		}
	}
	return false
}

// grants reports whether a node, agent or operator policy v gives level
// ("read" or "write").
func grants(v, level string) bool {
	return v == "write" || (v == "read" && level == "read")
}

// allows reports whether p grants what Nomad's ACLs ask of r (every
// answer measured on a Nomad 2.0 dev agent with tokens each lacking one
// grant: TestFidelityACLPolicy): reads of nodes, their allocations and
// host stats ask node read, drains, eligibility, purges and node
// evaluations node write; the job, allocation, evaluation and deployment
// reads ask read-job (a job's scale status read-job-scaling too), the job list
// list-jobs; registering, deregistering, scaling (scale-job too),
// evaluating a job and setting allocation health ask submit-job (or their
// own capability); stopping an allocation asks alloc-lifecycle; the
// agent's self and the scheduler configuration ask agent read and
// operator read (write to set it). Node pools ask nothing (a token sees
// only the pools its node_pool rules name: none, here), the simulator's
// own endpoints a token the scenario sets. Anything else asks a
// management token.
func (p *Policy) allows(r *http.Request) bool {
	path, get := r.URL.Path, r.Method == http.MethodGet || r.Method == http.MethodHead
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	node, agent, operator := func(l string) bool { return grants(p.Node, l) }, func(l string) bool { return grants(p.Agent, l) },
		func(l string) bool { return grants(p.Operator, l) }
	switch {
	case parts[0] == "sim":
		return tokenOf(r) != ""
	case path == "/v1/node/pools" && get:
		return true
	case path == "/v1/nodes" && get, path == "/v1/client/stats" && get, path == "/v1/agent/members" && get:
		return node("read")
	case parts[0] == "node" && len(parts) >= 2:
		if get {
			return node("read")
		}
		return node("write")
	case path == "/v1/agent/self" && get:
		return agent("read")
	case path == "/v1/operator/scheduler/configuration":
		if get {
			return operator("read")
		}
		return operator("write")
	case path == "/v1/jobs" && get:
		return p.has("list-jobs")
	case path == "/v1/jobs", parts[0] == "job" && len(parts) == 2 && !get && r.Method != http.MethodDelete:
		return p.has("submit-job", "register-job")
	case parts[0] == "job" && len(parts) == 2 && r.Method == http.MethodDelete:
		if r.URL.Query().Get("purge") == "true" {
			return p.has("submit-job", "purge-job")
		}
		return p.has("submit-job", "purge-job", "deregister-job")
	case parts[0] == "job" && len(parts) == 3 && parts[2] == "scale":
		if get {
			return p.has("read-job", "read-job-scaling")
		}
		return p.has("scale-job", "submit-job")
	case parts[0] == "job" && len(parts) == 3 && parts[2] == "evaluate" && !get:
		return p.has("submit-job", "evaluate-job")
	case parts[0] == "deployment" && len(parts) == 3 && parts[1] == "allocation-health" && !get:
		return p.has("submit-job", "set-alloc-health-deployment")
	case parts[0] == "allocation" && len(parts) == 3 && parts[2] == "stop" && !get:
		return p.has("alloc-lifecycle")
	case get && (path == "/v1/allocations" || path == "/v1/evaluations" || path == "/v1/deployments" ||
		parts[0] == "job" || parts[0] == "allocation" || parts[0] == "evaluation" || parts[0] == "deployment" ||
		(parts[0] == "client" && len(parts) == 4 && parts[1] == "allocation" && parts[3] == "stats")):
		return p.has("read-job")
	}
	return false
}

// policyKey carries the policy of the request's token to the handlers
// that filter what it may see.
type policyKey struct{}

// policyOf is the policy the request was served under, nil for a
// management token or with the ACLs off.
func policyOf(ctx context.Context) *Policy {
	p, _ := ctx.Value(policyKey{}).(*Policy)
	return p
}
