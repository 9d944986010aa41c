// Package exec is the "exec" scale target: it runs a local command, given
// as an argv list and never through a shell, to scale an external system.
// The command reads foreshape's JSON payload (target.Payload) on standard
// input and finds the same fields in FORESHAPE_* environment variables.
//
// config.go holds the target's settings, their defaults and validation,
// which run when a policy loads; exec.go is the runtime. This package must
// never start a process or look up the command while validating.
package exec

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// Name is the plugin name used in `target "exec" { ... }`.
const Name = "exec"

// Defaults.
const (
	DefaultTimeout = 30 * time.Second
	// MaxTimeout bounds how long a scale command may run.
	MaxTimeout = 30 * time.Minute
)

// Config is the validated settings of an exec target.
type Config struct {
	// Command is the argv: Command[0] is the program, run without a shell.
	Command []string
	// Timeout bounds one run; the process is killed after it. Default 30s.
	Timeout time.Duration
	// Env holds extra environment variables for the command.
	Env map[string]string
}

type configHCL struct {
	Command hcl.Expression `hcl:"command,optional"`
	Timeout hcl.Expression `hcl:"timeout,optional"`
	Env     hcl.Expression `hcl:"env,optional"`
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Spec validates exec settings.
var Spec policies.TargetSpec = policies.TargetFunc(Decode)

// Decode validates the body of an exec target block.
func Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	var h configHCL
	// An unknown argument does not stop the checks of the known ones (the
	// decode still fills them): every problem is reported at once.
	diags := gohcl.DecodeBody(body, nil, &h)
	cfg := &Config{Timeout: DefaultTimeout}
	field := prefix + ".command"
	argv, ok, d := hclfield.StringList(h.Command, field)
	diags = append(diags, d...)
	switch {
	case !ok && !d.HasErrors():
		diags = append(diags, hclfield.Required(h.Command, field)...)
	case ok && len(argv) == 0:
		diags = append(diags, hclfield.Invalid(h.Command.Range(), field, `The command is empty; give the program and its arguments, such as ["/usr/local/bin/scale", "web"].`))
	case ok && strings.TrimSpace(argv[0]) == "":
		diags = append(diags, hclfield.Invalid(h.Command.Range(), field, "The program name (the first element) is empty."))
	case ok:
		if err := checkArgv(argv); err != nil {
			diags = append(diags, hclfield.Invalid(h.Command.Range(), field, "%s.", err))
		} else {
			cfg.Command = argv
			if p := argv[0]; !filepath.IsAbs(p) && strings.ContainsRune(p, '/') {
				diags = append(diags, hclfield.Warning(h.Command.Range(), field,
					"The program %q is a relative path: the agent runs it from its own working directory, not the policy file's. Give an absolute path, or a bare name the agent finds in its PATH.", p))
			}
		}
	}

	if v, ok, d := hclfield.Duration(h.Timeout, prefix+".timeout"); ok {
		if v <= 0 || v > MaxTimeout {
			diags = append(diags, hclfield.Invalid(h.Timeout.Range(), prefix+".timeout",
				"%s is outside (0, %s].", hclfield.FormatDuration(v), hclfield.FormatDuration(MaxTimeout)))
		} else {
			cfg.Timeout = v
		}
	} else {
		diags = append(diags, d...)
	}

	if env, ok, d := hclfield.StringMap(h.Env, prefix+".env"); ok {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !envNameRE.MatchString(k) {
				diags = append(diags, hclfield.Invalid(h.Env.Range(), prefix+".env", "%q is not a valid environment variable name.", k))
			} else if strings.HasPrefix(k, "FORESHAPE_") {
				diags = append(diags, hclfield.Invalid(h.Env.Range(), prefix+".env",
					"%q cannot be set here: foreshape sets the FORESHAPE_* variables to each action's fields, over any value given.", k))
			}
		}
		if !diags.HasErrors() {
			cfg.Env = env
		}
	} else {
		diags = append(diags, d...)
	}

	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// checkArgv refuses NUL bytes, which no operating system passes in argv.
func checkArgv(argv []string) error {
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("element %d contains a NUL byte", i)
		}
	}
	return nil
}
