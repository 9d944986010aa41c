package command

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	register("agent", func(m Meta) cli.Command { return &AgentCommand{Meta: m} })
}

// AgentCommand loads and checks everything the agent would run with. The
// daemon itself is not part of this build: the command says so and exits
// with ExitInvalid rather than pretending to run.
type AgentCommand struct{ Meta }

func (c *AgentCommand) Synopsis() string { return "Run the foreshape agent" }

func (c *AgentCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape agent [options]

  Runs the foreshape agent. The configuration is loaded from -config (a
  file, or a directory of *.hcl files merged alphabetically), then the
  NOMAD_* and CONSUL_HTTP_* environment overrides, then the flags below; the
  shaping policies are loaded from the configuration's policies.dir.

  This build loads and validates the configuration and the policies and
  prints the effective configuration (secrets redacted), but cannot run the
  daemon yet: it then exits 1.

Options:

  -config=PATH      Agent configuration file or directory. Required unless
                    -dev is given.
  -dev              Dev mode: a single in-memory server that bootstraps
                    alone and logs at debug level.
  -http-addr=ADDR   HTTP API address, HOST:PORT; overrides http.address.

Example:

  $ foreshape agent -config /etc/foreshape/config.d
  $ foreshape agent -dev -http-addr 127.0.0.1:7575
`)
}

func (c *AgentCommand) Run(args []string) int {
	fs := c.FlagSet("agent", c.Help)
	path := fs.String("config", "", "")
	dev := fs.Bool("dev", false, "")
	httpAddr := fs.String("http-addr", "", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("agent", fmt.Sprintf("agent takes no arguments, got %q", fs.Arg(0)))
	}
	if *path == "" && !*dev {
		return c.UsageError("agent", "-config PATH is required (or -dev for a throwaway dev agent)")
	}
	setup := loadAgent(*path, *dev, *httpAddr, os.Getenv)
	writeDiags(c.Err, setup.files, setup.diags)
	if setup.diags.HasErrors() {
		return ExitInvalid
	}
	if code := printConfig(c.Out, c.Err, setup.cfg, "hcl"); code != ExitOK {
		return code
	}
	fmt.Fprintf(c.Err, "\nforeshape: the configuration and %d shaping %s are valid, but this build cannot run the agent yet; exiting.\n",
		len(setup.policies), plural(len(setup.policies), "policy", "policies"))
	return ExitInvalid
}

// agentSetup is everything the agent starts from.
type agentSetup struct {
	cfg      *config.Config
	policies []*policies.Policy
	// files and diags are for writeDiags; diags.HasErrors() means the
	// agent must not start.
	files map[string]*hcl.File
	diags hcl.Diagnostics
}

// loadAgent builds the agent's configuration from its sources, in order of
// precedence: defaults (dev or production), the files at path (none when
// empty), the environment through getenv, and the -http-addr flag; then it
// validates the result and loads the policies from policies.dir. A missing
// policies directory is an error, or a warning in dev mode.
func loadAgent(path string, dev bool, httpAddr string, getenv func(string) string) agentSetup {
	cfg, s := loadAgentConfig(path, dev, httpAddr, getenv)
	if s.diags.HasErrors() {
		return s
	}
	s.cfg = cfg
	dir := cfg.Policies.Dir
	if _, err := os.Stat(dir); err != nil {
		d := &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read policies.dir",
			Detail:   fmt.Sprintf("%s (set by %s): %v.", dir, cfg.Source("policies.dir"), unwrapPath(err)),
		}
		if dev {
			d.Severity = hcl.DiagWarning
			d.Detail += " The dev agent runs without policies."
		}
		s.diags = append(s.diags, d)
		return s
	}
	loader := policies.NewLoader()
	ps, diags := loader.LoadDir(dir)
	for name, f := range loader.Files() {
		s.files[name] = f
	}
	s.policies = ps
	s.diags = append(s.diags, diags...)
	return s
}

// loadAgentConfig loads and validates the agent configuration alone; see
// loadAgent for the order of sources.
func loadAgentConfig(path string, dev bool, httpAddr string, getenv func(string) string) (*config.Config, agentSetup) {
	base := config.Default()
	if dev {
		base = config.DevDefault()
	}
	s := agentSetup{files: map[string]*hcl.File{}}
	cfg := base
	if path != "" {
		loader := config.NewLoader()
		var diags hcl.Diagnostics
		cfg, diags = loader.Load(base, path)
		s.files = loader.Files()
		s.diags = append(s.diags, diags...)
	}
	s.diags = append(s.diags, config.ApplyEnv(cfg, getenv)...)
	if httpAddr != "" {
		s.diags = append(s.diags, config.Set(cfg, "http.address", httpAddr, "flag -http-addr")...)
	}
	if !s.diags.HasErrors() {
		s.diags = append(s.diags, cfg.Validate()...)
	}
	return cfg, s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
