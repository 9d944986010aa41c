package policies

import (
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
)

// TargetSpec is what a scale target plugin registers: the schema, defaults
// and validation of its settings. It runs when a policy loads, so a bad
// webhook URL is reported with the policy's other errors, not when the
// first scale action fires.
type TargetSpec interface {
	// Decode validates the body of a `target "PLUGIN" { ... }` block and
	// returns the plugin's typed settings with its defaults applied.
	// prefix names the block for messages ("scale.web.target.webhook");
	// every diagnostic points into body and names the field as
	// prefix + "." + attribute. Decode must not perform I/O.
	Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics)
}

// TargetFunc adapts a function to TargetSpec.
type TargetFunc func(body hcl.Body, prefix string) (any, hcl.Diagnostics)

// Decode calls f.
func (f TargetFunc) Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	return f(body, prefix)
}

var targets = struct {
	sync.RWMutex
	m map[string]TargetSpec
}{m: map[string]TargetSpec{}}

// RegisterTarget makes a scale target plugin known to policy validation.
// It is called from a plugin package's init; registering a name twice or a
// nil spec panics, as both are programming errors.
func RegisterTarget(name string, spec TargetSpec) {
	if name == "" || spec == nil {
		panic("policies: RegisterTarget with an empty name or nil spec")
	}
	targets.Lock()
	defer targets.Unlock()
	if _, dup := targets.m[name]; dup {
		panic(fmt.Sprintf("policies: target plugin %q registered twice", name))
	}
	targets.m[name] = spec
}

// LookupTarget returns the registered spec for name.
func LookupTarget(name string) (TargetSpec, bool) {
	targets.RLock()
	defer targets.RUnlock()
	s, ok := targets.m[name]
	return s, ok
}

// Targets returns the registered target plugin names, sorted.
func Targets() []string {
	targets.RLock()
	defer targets.RUnlock()
	names := make([]string, 0, len(targets.m))
	for n := range targets.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
