package deploy

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	"github.com/foreshape/foreshape/config"
)

const nomadAPI = "github.com/hashicorp/nomad/api"

// needs says which ACL grant each Nomad API call the agent may make needs,
// from Nomad's API documentation: "namespace:CAP" for a namespace
// capability, "node:read" or "node:write", "agent:read", "operator:read",
// and "" for a call that needs none. A call whose grant is also given by a
// broader capability the policy already needs (read-job covers
// read-job-scaling) names that one, so the policy stays minimal.
var needs = map[string][]string{
	"Nodes.List":              {"node:read"},
	"Nodes.Info":              {"node:read"},
	"Nodes.Allocations":       {"node:read"},
	"Nodes.Stats":             {"node:read"},
	"Nodes.UpdateDrain":       {"node:write"},
	"Nodes.UpdateDrainOpts":   {"node:write"},
	"Nodes.ToggleEligibility": {"node:write"},
	"Allocations.List":        {"namespace:read-job"},
	"Allocations.Info":        {"namespace:read-job"},
	"Allocations.Stats":       {"namespace:read-job"},
	"Allocations.Stop":        {"namespace:alloc-lifecycle"},
	"Jobs.List":               {"namespace:list-jobs"},
	"Jobs.Info":               {"namespace:read-job"},
	"Jobs.Allocations":        {"namespace:read-job"},
	"Jobs.Summary":            {"namespace:read-job"},
	"Jobs.Evaluations":        {"namespace:read-job"},
	"Jobs.Deployments":        {"namespace:read-job"},
	"Jobs.LatestDeployment":   {"namespace:read-job"},
	"Jobs.ScaleStatus":        {"namespace:read-job"},
	"Jobs.Register":           {"namespace:submit-job"},
	"Jobs.RegisterOpts":       {"namespace:submit-job"},
	"Jobs.Deregister":         {"namespace:submit-job"},
	"Jobs.DeregisterOpts":     {"namespace:submit-job"},
	"Jobs.Scale":              {"namespace:scale-job"},
	"Jobs.ScaleWithRequest":   {"namespace:scale-job"},
	"Evaluations.Info":        {"namespace:read-job"},
	"Evaluations.List":        {"namespace:read-job"},
	"Deployments.Info":        {"namespace:read-job"},
	"Deployments.List":        {"namespace:read-job"},
	"EventStream.Stream":      {"namespace:read-job", "node:read"},
	"Agent.Self":              {"agent:read"},
	// Raw calls are keyed by their constant path (rawKey).
	"Raw.Query /v1/agent/self":           {"agent:read"},
	"Agent.Members":                      {"agent:read"},
	"Operator.SchedulerGetConfiguration": {"operator:read"},
	"Status.Leader":                      {""},
	"Status.Peers":                       {""},
	"Regions.List":                       {""},
}

// endpoints are the nomad/api types whose methods call Nomad.
var endpoints = map[string]bool{
	"Nodes": true, "Allocations": true, "Jobs": true, "Evaluations": true, "Deployments": true,
	"EventStream": true, "Agent": true, "Operator": true, "Status": true, "Regions": true,
	"Scaling": true, "NodePools": true, "Namespaces": true, "Search": true, "Variables": true,
	"ACLTokens": true, "ACLPolicies": true, "Services": true, "CSIVolumes": true, "Quotas": true,
	"Recommendations": true, "Keyring": true, "Raw": true,
}

// agentPkg is the agent daemon (servers and client agents); the code it
// runs is every package of the module it imports.
const agentPkg = "github.com/foreshape/foreshape/agent"

// nomadCalls type-checks the module and returns every call of a method of
// a nomad/api endpoint type, as "Type.Method", with where it is made, in
// the packages the agent runs (not the simulator or evaluation tools).
func nomadCalls(t *testing.T) map[string][]string {
	t.Helper()
	pkgs, err := packages.Load(&packages.Config{
		Dir:  "..",
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
	}, "./...")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*packages.Package{}
	for _, p := range pkgs {
		byPath[p.PkgPath] = p
	}
	if byPath[agentPkg] == nil {
		t.Fatalf("package %s not found", agentPkg)
	}
	runs := map[string]bool{}
	var walk func(p *packages.Package)
	walk = func(p *packages.Package) {
		if runs[p.PkgPath] || byPath[p.PkgPath] == nil {
			return
		}
		runs[p.PkgPath] = true
		for _, imp := range p.Imports {
			walk(imp)
		}
	}
	walk(byPath[agentPkg])
	calls := map[string][]string{}
	for _, p := range pkgs {
		if !runs[p.PkgPath] {
			continue
		}
		for _, e := range p.Errors {
			t.Fatalf("loading %s: %v", p.PkgPath, e)
		}
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				fn, ok := p.TypesInfo.Uses[sel.Sel].(*types.Func)
				if !ok || fn.Pkg() == nil || fn.Pkg().Path() != nomadAPI {
					return true
				}
				recv := fn.Signature().Recv()
				if recv == nil {
					return true
				}
				rt := recv.Type()
				if ptr, ok := rt.(*types.Pointer); ok {
					rt = ptr.Elem()
				}
				named, ok := rt.(*types.Named)
				if !ok {
					return true
				}
				typ := named.Obj().Name()
				if typ == "Client" && fn.Name() == "Raw" {
					typ = "Raw"
				}
				if !endpoints[typ] {
					return true
				}
				key := typ + "." + fn.Name()
				if typ == "Raw" {
					if fn.Name() == "Raw" {
						return true // the client's Raw(), which calls nothing
					}
					key = rawKey(key, call)
				}
				calls[key] = append(calls[key], p.Fset.Position(call.Pos()).String())
				return true
			})
		}
	}
	return calls
}

// policyGrants reads the ACL policy: namespace capabilities as
// "namespace:CAP", and "node:read|write", "agent:…", "operator:…".
func policyGrants(t *testing.T) (map[string]bool, []byte) {
	t.Helper()
	b, src := parse(t, "foreshape-acl.hcl")
	grants := map[string]bool{}
	for _, blk := range b.Blocks {
		switch blk.Type {
		case "namespace":
			if _, ok := blk.Body.Attributes["policy"]; ok {
				t.Errorf("namespace %q grants a policy; list its capabilities instead, each needed by a call", blk.Labels[0])
			}
			if len(blk.Labels) != 1 || blk.Labels[0] != "*" {
				t.Errorf("namespace %v: the agents read and act in every namespace (\"*\")", blk.Labels)
			}
			v := value(t, blk.Body, "capabilities")
			for it := v.ElementIterator(); it.Next(); {
				_, c := it.Element()
				cap := c.AsString()
				grants["namespace:"+cap] = true
				// Each capability is explained by a comment in its block.
				text := string(blk.Body.SrcRange.SliceBytes(src))
				if !commentNames(text, cap) {
					t.Errorf("namespace capability %s is not explained by a comment in its block", cap)
				}
			}
		case "node", "agent", "operator":
			p := str(t, blk.Body, "policy")
			grants[blk.Type+":"+p] = true
			if !commentNames(string(blk.Body.SrcRange.SliceBytes(src)), p) {
				t.Errorf("%s policy %s is not explained by a comment in its block", blk.Type, p)
			}
		default:
			t.Errorf("unexpected %s rule", blk.Type)
		}
	}
	return grants, src
}

// commentNames reports whether a comment line of text starts with name
// followed by a colon ("# read-job: …").
func commentNames(text, name string) bool {
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "# "+name+":") {
			return true
		}
	}
	return false
}

// TestACLPolicyCoversEveryCall: every Nomad API call in the agent's code
// is allowed by deploy/foreshape-acl.hcl, and the policy grants nothing no
// call needs. A new call fails here until its grant is in needs and in the
// policy.
func TestACLPolicyCoversEveryCall(t *testing.T) {
	calls := nomadCalls(t)
	if len(calls) == 0 {
		t.Fatal("found no Nomad API call in the code")
	}
	required := map[string]string{} // grant → a call that needs it
	for _, call := range slices.Sorted(maps.Keys(calls)) {
		gs, ok := needs[call]
		if !ok {
			t.Errorf("%s (at %s) is not in needs: add the ACL grant it needs (Nomad's API docs say which) and grant it in foreshape-acl.hcl",
				call, calls[call][0])
			continue
		}
		for _, g := range gs {
			if g != "" {
				required[g] = call
			}
		}
	}
	// node:write, agent:write and operator:write include their read.
	for _, scope := range []string{"node", "agent", "operator"} {
		if _, ok := required[scope+":write"]; ok {
			delete(required, scope+":read")
		}
	}
	grants, _ := policyGrants(t)
	for _, g := range slices.Sorted(maps.Keys(required)) {
		if !grants[g] {
			t.Errorf("the policy does not grant %s, which %s needs (%s)", g, required[g], calls[required[g]][0])
		}
	}
	for _, g := range slices.Sorted(maps.Keys(grants)) {
		if _, ok := required[g]; !ok {
			t.Errorf("the policy grants %s, which no call needs", g)
		}
	}
	var lines []string
	for _, c := range slices.Sorted(maps.Keys(calls)) {
		lines = append(lines, fmt.Sprintf("%s ×%d", c, len(calls[c])))
	}
	sort.Strings(lines)
	t.Logf("Nomad API calls in the code: %s", strings.Join(lines, ", "))
}

// TestConsulPolicy: the Consul policy grants write on the agents' service
// (default consul.service_name) and on its NAME-metrics twin, and read on
// every node, and nothing else;
// TestConsulACLPolicyReal (agent/) checks against a real Consul that it is
// enough and that less is not.
func TestConsulPolicy(t *testing.T) {
	b, _ := parse(t, "foreshape-consul-acl.hcl")
	if len(b.Attributes) != 0 {
		t.Errorf("the policy sets attributes; want only the service and node_prefix rules")
	}
	var got []string
	for _, blk := range b.Blocks {
		got = append(got, fmt.Sprintf("%s %q %s", blk.Type, strings.Join(blk.Labels, ","), value(t, blk.Body, "policy").AsString()))
	}
	want := []string{
		fmt.Sprintf("service %q write", config.Default().Consul.ServiceName),
		fmt.Sprintf("service %q write", config.Default().Consul.ServiceName+"-metrics"),
		`node_prefix "" read`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules %q, want %q", got, want)
	}
}

// rawKey is a raw call's key: its method and, when its first argument is
// a constant string, the path it asks ("Raw.Query /v1/agent/self"), so
// that the grant it needs is the path's; a path that is not a constant
// keeps the bare method, which needs names none and so fails the test.
func rawKey(method string, call *ast.CallExpr) string {
	if len(call.Args) == 0 {
		return method
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return method
	}
	path, err := strconv.Unquote(lit.Value)
	if err != nil {
		return method
	}
	return method + " " + path
}

// TestACLPolicyCommandsAsDocumented: the commands foreshape-acl.hcl's
// comment gives are docs/deployment.md's. Each job has its own, which
// attaches the policy to it in its namespace under the job's name and is
// step 2's and the job file's own comment's; the rest (a policy of its own
// and a token of it) are the static token variant's.
func TestACLPolicyCommandsAsDocumented(t *testing.T) {
	_, src := parse(t, "foreshape-acl.hcl")
	var commands []string
	for _, line := range strings.Split(string(src), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(line, "#")), "nomad acl "); ok {
			commands = append(commands, "nomad acl "+c)
		}
	}
	doc := deploymentDoc(t)
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	steps, static := flat(section(t, doc, "Steps")), flat(section(t, doc, staticSection))
	attach := regexp.MustCompile(`^nomad acl policy apply -namespace (\S+) -job (\S+) -description "[^"]+" (\S+) deploy/foreshape-acl\.hcl$`)
	attached := map[string]bool{}
	var others int
	for _, c := range commands {
		m := attach.FindStringSubmatch(c)
		if m == nil {
			others++
			if !strings.Contains(static, "`"+c+"`") {
				t.Errorf("foreshape-acl.hcl gives `%s`, which docs/deployment.md's %q does not", c, staticSection)
			}
			continue
		}
		i := slices.IndexFunc(jobs, func(j job) bool { return j.name == m[2] })
		if i < 0 {
			t.Errorf("`%s` attaches the policy to %s, which is none of deploy/'s jobs", c, m[2])
			continue
		}
		j := jobs[i]
		attached[j.name] = true
		b, _ := parse(t, j.file)
		ns := "default"
		if jb := one(t, b, "job"); jb.Attributes["namespace"] != nil {
			ns = str(t, jb, "namespace")
		}
		if m[1] != ns || m[3] != j.name {
			t.Errorf("`%s`: want the policy named %s in the job's namespace, %s", c, j.name, ns)
		}
		if !strings.Contains(steps, "`"+c+"`") {
			t.Errorf("foreshape-acl.hcl gives `%s`, which docs/deployment.md's step 2 does not", c)
		}
		if !strings.Contains(string(mustSrc(t, j.file)), "#   "+c+"\n") {
			t.Errorf("%s's comment does not give `%s`", j.file, c)
		}
	}
	for _, j := range jobs {
		if !attached[j.name] {
			t.Errorf("foreshape-acl.hcl's comment attaches the policy to no job %s", j.name)
		}
	}
	if others != 2 {
		t.Errorf("foreshape-acl.hcl's comment gives %d commands besides the jobs'; want the static token's policy and token", others)
	}
}
