package command

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/config"
)

func init() {
	register("config validate", func(m Meta) cli.Command { return &ConfigValidateCommand{Meta: m} })
	register("config show", func(m Meta) cli.Command { return &ConfigShowCommand{Meta: m} })
}

// ConfigValidateCommand checks an agent configuration file or directory.
type ConfigValidateCommand struct{ Meta }

func (c *ConfigValidateCommand) Synopsis() string {
	return "Check an agent configuration file or directory"
}

func (c *ConfigValidateCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape config validate [options] PATH

  Loads the agent configuration at PATH, a file or a directory of *.hcl
  files merged in alphabetical order (later files override earlier ones),
  and refuses exactly what 'foreshape agent' would refuse at start, with
  the same messages: every setting and the rules between them; a server's
  policies in policies.dir (which must exist) and what they need of the
  agent (forecast.queries need prometheus.address; the policies' localities
  must need no more series than the series store holds; every scale target
  needs a runtime); the files the configuration names (acl.token_file and
  acl.read_token_file, which must hold a token; nomad.token_file;
  prometheus.token_file and password_file; the tls, nomad and prometheus
  certificates, keys and CAs);
  a server's data_dir, which this user must be able to create or write
  to, on a disk rather than one of the kernel's file systems such as
  /proc, the node ID in it, when there is one, and the peers.json an
  operator wrote there to recover a lost quorum, when there is one, which
  must pass the checks the agent makes of it before it applies it
  (nothing is written there, and the file is neither applied nor
  renamed); and, once all that passes,
  the addresses the agent listens on, http.address and a server's
  bind_addr, which must be this host's (an IP address of one of its
  interfaces, 0.0.0.0, localhost, or a host name that resolves to one
  within 2s). Each problem is reported with its file, line and column and
  the name of the setting.

  Files are read with your permissions and addresses are this host's:
  run it as the user the agent runs as, on its host. It binds no port,
  opens no Raft store and contacts nothing but the resolver (for a host
  name in http.address), so it can run beside a running agent (before a
  reload); a port in use, a data_dir another agent holds, a peers.json
  in the data_dir of a server that started but never formed or joined a
  cluster (a node ID, no Raft state) or a Nomad that does not answer show
  only when the agent starts.

  Exits 0 when the configuration is valid (warnings may be printed), 1 when
  it is not, and 2 on a usage error.

Options:

  -dev             Validate over dev-mode defaults, as 'foreshape agent
                   -dev' would (a missing policies.dir is then a warning;
                   nomad settings are refused: -dev runs against its
                   embedded simulated cluster).
  -dev-sim=false   With -dev, as 'foreshape agent -dev -dev-sim=false':
                   against nomad.address instead of the embedded cluster.
  -env             Apply the NOMAD_* and CONSUL_HTTP_* environment
                   overrides first, as the agent does. What they set that
                   the agent would not use (NOMAD_CACERT with an http://
                   nomad.address, CONSUL_HTTP_ADDR without Consul) is
                   accepted, as the agent does, with a note saying why,
                   if its value is valid (an invalid one is refused, as
                   the agent refuses it); NOMAD_HTTP_AUTH and
                   NOMAD_CAPATH, which no setting of foreshape's takes,
                   are accepted with a note. Consul's own variables,
                   which no setting of foreshape's takes (CONSUL_CACERT,
                   CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, ...), are read
                   by Consul's API client with or without -env, as the
                   agent reads them, when the configuration uses Consul.
  -http-addr=ADDR  Override http.address, as the agent's -http-addr does.
  -replay=DIR      Validate as the agent runs with -replay DIR and this
                   configuration: a replay refuses the settings it would not use
                   (nomad, prometheus, reserve and queue settings, data_dir,
                   bind_addr, the server's Raft port and voting settings,
                   forecast_only, and policies.dir when DIR holds *.hcl
                   policies), and the policies (DIR's *.hcl, else
                   policies.dir) and the recorded series in DIR must load.

Example:

  $ foreshape config validate /etc/foreshape/config.d
  /etc/foreshape/config.d: the configuration is valid.

  $ foreshape config validate -env /etc/foreshape/agent.hcl
`)
}

func (c *ConfigValidateCommand) Run(args []string) int {
	fs := c.FlagSet("config validate", c.Help)
	dev := fs.Bool("dev", false, "")
	devSim := fs.Bool("dev-sim", true, "")
	env := fs.Bool("env", false, "")
	httpAddr := fs.String("http-addr", "", "")
	replayDir := fs.String("replay", "", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.UsageError("config validate", "config validate takes exactly one PATH")
	}
	replaying := *replayDir != ""
	if *dev && replaying {
		return c.UsageError("config validate", "-dev and -replay both run without a cluster; choose one")
	}
	// As the agent: -dev-sim without -dev would do nothing.
	devSimSet := false
	fs.Visit(func(f *flag.Flag) { devSimSet = devSimSet || f.Name == "dev-sim" })
	if devSimSet && !*dev {
		return c.UsageError("config validate", "-dev-sim only applies with -dev")
	}
	path := fs.Arg(0)
	getenv := func(string) string { return "" }
	if *env {
		getenv = os.Getenv
	}
	// What 'foreshape agent -config PATH' runs before it starts.
	s := loadAgent(path, *dev || replaying, *replayDir, *dev && *devSim, *httpAddr, getenv, nil)
	writeDiags(c.Err, s.files, s.diags)
	if s.diags.HasErrors() {
		return s.exitCode()
	}
	if replaying {
		// What the agent then loads of the recording, at its speed (the
		// speed changes nothing that is checked).
		_, diags, err := prepareReplay(*replayDir, defaultReplaySpeed, s.policies)
		writeDiags(c.Err, s.files, diags)
		if err != nil {
			fmt.Fprintf(c.Err, "error: %v\n", err)
		}
		if err != nil || diags.HasErrors() {
			return ExitInvalid
		}
	}
	// What the agent would log as unused when it starts.
	for _, u := range s.cfg.Unused() {
		fmt.Fprintf(c.Err, "note: %s, set by %s, is not used: %s.\n", u.Field, u.Source, u.Reason)
	}
	for _, v := range config.IgnoredEnv(getenv) {
		fmt.Fprintf(c.Err, "note: environment variable %s is ignored: %s.\n", v.Name, v.Reason)
	}
	fmt.Fprintf(c.Out, "%s: the configuration is valid.\n", path)
	return ExitOK
}

// ConfigShowCommand prints the merged configuration with secrets redacted.
type ConfigShowCommand struct{ Meta }

func (c *ConfigShowCommand) Synopsis() string {
	return "Print the effective agent configuration, secrets redacted"
}

func (c *ConfigShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape config show [options] PATH

  Loads the agent configuration at PATH (a file or a directory of *.hcl
  files), checks its settings and the rules between them, and prints the
  effective configuration: every setting, defaults included.

  In HCL, a setting that no file set is a comment, with its default value
  ('# raft_port = 7576 (default)') or the environment variable -env took
  it from ('# address = "https://nomad:4646" (from environment variable
  NOMAD_ADDR)'), and a token is a comment that says whether it is set
  ('# token = <redacted> (set; not shown)' or '# token is not set'), as
  are prometheus.headers, by name ('# headers = { "X-Scope-OrgID" =
  <redacted> } (set; values not shown)'), so the output loads back as the
  same configuration less its tokens, headers and what the environment
  set (-env sets it again). In JSON every setting is a value, a token or
  header value that is set "<redacted>" and a token that is not "".

  A setting whose default is worked out elsewhere is "" when not set:
  name (the host name), advertise_addr (bind_addr and http.address's
  host), nomad.region and nomad.namespace (the Nomad agent's), and
  prometheus.iops_query (node_exporter's disk operations, as example.hcl
  shows). The files it names and the policies in policies.dir are not
  read: 'foreshape config validate' checks those.

Options:

  -dev            Start from dev-mode defaults; nomad settings are refused,
                  as 'foreshape agent -dev' refuses them (its embedded
                  simulated cluster takes Nomad's place).
  -dev-sim=false  With -dev, as 'foreshape agent -dev -dev-sim=false':
                  against nomad.address instead of the embedded cluster.
  -env            Apply the NOMAD_* and CONSUL_HTTP_* environment overrides.
  -format=FORMAT  "hcl" (default) or "json".

Example:

  $ NOMAD_TOKEN=... foreshape config show -env example.hcl
  ...
  nomad {
    address   = "https://nomad.service.consul:4646"
    region    = "global"
    namespace = "default"
    # token = <redacted> (set; not shown)
  ...
`)
}

func (c *ConfigShowCommand) Run(args []string) int {
	fs := c.FlagSet("config show", c.Help)
	dev := fs.Bool("dev", false, "")
	devSim := fs.Bool("dev-sim", true, "")
	env := fs.Bool("env", false, "")
	format := fs.String("format", "hcl", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	devSimSet := false
	fs.Visit(func(f *flag.Flag) { devSimSet = devSimSet || f.Name == "dev-sim" })
	if devSimSet && !*dev {
		return c.UsageError("config show", "-dev-sim only applies with -dev")
	}
	if fs.NArg() != 1 {
		return c.UsageError("config show", "config show takes exactly one PATH")
	}
	if *format != "hcl" && *format != "json" {
		return c.UsageError("config show", fmt.Sprintf("-format must be hcl or json, not %q", *format))
	}
	cfg, files, diags := loadConfig(fs.Arg(0), *dev, *env, os.Getenv)
	if *dev && *devSim {
		// As the agent: its nomad settings would do nothing.
		cfg.NoNomad = devSimNoNomad()
	}
	if !diags.HasErrors() {
		diags = append(diags, cfg.Validate()...)
	}
	writeDiags(c.Err, files, diags)
	if diags.HasErrors() {
		return ExitInvalid
	}
	return printConfig(c.Out, c.Err, cfg, *format)
}

// printConfig writes cfg, redacted, in format ("hcl" or "json").
func printConfig(out, errw io.Writer, cfg *config.Config, format string) int {
	if format == "json" {
		b, err := cfg.JSON()
		if err != nil {
			fmt.Fprintf(errw, "error: encoding the configuration: %v\n", err)
			return ExitInvalid
		}
		fmt.Fprintf(out, "%s\n", b)
		return ExitOK
	}
	_, _ = out.Write(cfg.HCL())
	return ExitOK
}

// loadConfig loads path over the production (or dev) defaults and
// optionally applies the environment; the caller checks the result. files
// holds the sources for printing diagnostics.
func loadConfig(path string, dev, env bool, getenv func(string) string) (*config.Config, map[string]*hcl.File, hcl.Diagnostics) {
	base := config.Default()
	if dev {
		base = config.DevDefault()
	}
	loader := config.NewLoader()
	cfg, diags := loader.Load(base, path)
	if env {
		diags = append(diags, config.ApplyEnv(cfg, getenv)...)
	}
	return cfg, loader.Files(), diags
}

// writeDiags prints diagnostics with hcl's text writer (source snippet,
// no colour or wrapping unless w is a terminal), each headed by a
// FILE:LINE,COL locator line that editors and grep understand. Errors come
// before warnings, each group in source order.
func writeDiags(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Severity != b.Severity {
			return a.Severity == hcl.DiagError
		}
		if a.Subject == nil || b.Subject == nil {
			return a.Subject == nil && b.Subject != nil
		}
		if a.Subject.Filename != b.Subject.Filename {
			return a.Subject.Filename < b.Subject.Filename
		}
		return a.Subject.Start.Byte < b.Subject.Start.Byte
	})
	// The snippets show the files with their credentials redacted.
	shown := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		if f != nil {
			shown[name] = &hcl.File{Body: f.Body, Bytes: config.RedactSource(f.Bytes), Nav: f.Nav}
		}
	}
	width, color := terminal(w)
	for _, d := range sorted {
		var buf bytes.Buffer
		tw := hcl.NewDiagnosticTextWriter(&buf, shown, width, color)
		if err := tw.WriteDiagnostic(d); err != nil {
			fmt.Fprintf(w, "%s\n", d.Error())
			continue
		}
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		header := fmt.Sprintf("%s: %s", sev, d.Summary)
		if d.Subject != nil {
			header = fmt.Sprintf("%s: %s", d.Subject, header)
		}
		// The text writer's own first line repeats the summary: replace it
		// with the locator header.
		body := buf.String()
		if i := strings.Index(body, "\n"); i >= 0 {
			body = body[i+1:]
		}
		fmt.Fprintf(w, "%s\n%s", header, body)
	}
}

// terminal returns the wrap width and colour setting for w: none unless w
// is a character device.
func terminal(w io.Writer) (uint, bool) {
	if !isTerminal(w) {
		return 0, false
	}
	return 100, colourOn(true, nil, os.Getenv)
}
