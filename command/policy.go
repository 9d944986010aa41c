package command

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	_ "github.com/foreshape/foreshape/plugins/target/builtin" // registers nomad-job, webhook, exec
	"github.com/foreshape/foreshape/policies"
)

func init() {
	register("policy validate", func(m Meta) cli.Command { return &PolicyValidateCommand{Meta: m} })
	register("policy fmt", func(m Meta) cli.Command { return &PolicyFmtCommand{Meta: m} })
}

// PolicyValidateCommand checks policy files.
type PolicyValidateCommand struct{ Meta }

func (c *PolicyValidateCommand) Synopsis() string { return "Check one or more policy files" }

func (c *PolicyValidateCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape policy validate [options] PATH...

  Parses and validates shaping policies, and refuses exactly what the agent
  refuses in them at start. Each PATH is a policy file or a directory whose
  *.hcl files are read in alphabetical order (not hidden ones, which
  editors leave, nor subdirectories); a file named twice is read once, and
  a file given by name that the agent would skip in policies.dir (not
  *.hcl, or hidden) is checked, with a warning saying so. Every block and
  attribute is
  checked, including each scale target plugin's own settings, policy names
  must be unique across all PATHs, every scale target must have a runtime
  in this foreshape, and the policies' localities must need no more series
  than the agent's series store holds (100,000; each locality has Nomad's
  four metrics, plus its queries' metrics). Each problem is reported with
  its file, line and column and the name of the setting. docs/policies.md
  describes every setting.

  What the agent also refuses depends on its configuration, and is checked
  only with -config: a policy's forecast.queries need prometheus.address;
  with Prometheus each locality's series include its three IOPS metrics;
  and a nomad-job target's unset namespace or region is the agent's
  nomad.namespace (else "default") or nomad.region, so two targets of one
  job and group, one naming the namespace or region the other leaves
  unset, are refused as one group only with -config. 'foreshape config
  validate' checks the configuration with the policies in its
  policies.dir.

  Exits 0 when every policy is valid (warnings may be printed), 1 when one
  is not, and 2 on a usage error.

Options:

  -config=PATH   The agent configuration (a file or a directory of *.hcl
                 files) to check the policies against.
  -env           With -config, apply the NOMAD_* and CONSUL_HTTP_*
                 environment overrides to it first, as the agent does (and
                 as 'foreshape config validate -env').

Example:

  $ foreshape policy validate policies/examples/*.hcl
  3 policies valid: batch-pool, storage-maintenance, web-daily-peak

  $ foreshape policy validate -config /etc/foreshape/config.d /etc/foreshape/policies.d
`)
}

func (c *PolicyValidateCommand) Run(args []string) int {
	fs := c.FlagSet("policy validate", c.Help)
	cfgPath := fs.String("config", "", "")
	env := fs.Bool("env", false, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *env && *cfgPath == "" {
		return c.UsageError("policy validate", "-env applies the environment to the configuration of -config; give -config too")
	}
	if fs.NArg() == 0 {
		return c.UsageError("policy validate", "policy validate needs at least one PATH")
	}
	loader := policies.NewLoader()
	ps, diags := loader.LoadPaths(fs.Args()...)
	files := loader.Files()
	var cfg *config.Config
	if *cfgPath != "" {
		var (
			cfiles map[string]*hcl.File
			cdiags hcl.Diagnostics
		)
		cfg, cfiles, cdiags = loadConfig(*cfgPath, false, *env, os.Getenv)
		if !cdiags.HasErrors() {
			cdiags = append(cdiags, cfg.Validate()...)
		}
		maps.Copy(files, cfiles)
		diags = append(cdiags, diags...)
	}
	if !diags.HasErrors() {
		// Options.Policies: these files are the policies, not policies.dir.
		diags = append(diags, preflight.Policies(cfg, ps, preflight.Options{Policies: ps, Now: time.Now()})...)
	}
	writeDiags(c.Err, files, diags)
	if diags.HasErrors() {
		return ExitInvalid
	}
	if len(ps) == 0 {
		fmt.Fprintln(c.Out, "no policies found")
		return ExitOK
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	noun := "policies"
	if len(ps) == 1 {
		noun = "policy"
	}
	fmt.Fprintf(c.Out, "%d %s valid: %s\n", len(ps), noun, strings.Join(names, ", "))
	return ExitOK
}

// PolicyFmtCommand rewrites HCL files in canonical format.
type PolicyFmtCommand struct{ Meta }

func (c *PolicyFmtCommand) Synopsis() string {
	return "Rewrite policy files in canonical HCL format"
}

func (c *PolicyFmtCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape policy fmt [options] [PATH...]

  Rewrites HCL files (policies, and agent configuration such as
  example.hcl) in canonical format. Each PATH is a file or a directory
  whose *.hcl files are formatted; the default is the current directory.
  Files with syntax errors are reported and left untouched.

Options:

  -check        List the files that are not formatted, change nothing, and
                exit 1 if there are any.
  -write=false  Print the formatted source to standard output instead of
                rewriting the files.

Example:

  $ foreshape policy fmt policies/examples
  $ foreshape policy fmt -check policies/examples example.hcl
`)
}

func (c *PolicyFmtCommand) Run(args []string) int {
	fs := c.FlagSet("policy fmt", c.Help)
	check := fs.Bool("check", false, "")
	write := fs.Bool("write", true, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(c.Err, "error: %s: %v\n", p, unwrapPath(err))
			return ExitInvalid
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := policies.HCLFiles(p)
		if err != nil {
			fmt.Fprintf(c.Err, "error: %s: %v\n", p, unwrapPath(err))
			return ExitInvalid
		}
		if len(found) == 0 {
			fmt.Fprintf(c.Err, "warning: %s holds no *.hcl file; nothing to format there (subdirectories are not read)\n", p)
		}
		files = append(files, found...)
	}

	parser := hclparse.NewParser()
	code := ExitOK
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(c.Err, "error: %s: %v\n", path, unwrapPath(err))
			code = ExitInvalid
			continue
		}
		if _, diags := parser.ParseHCL(src, path); diags.HasErrors() {
			writeDiags(c.Err, parser.Files(), diags)
			code = ExitInvalid
			continue
		}
		out := hclwrite.Format(src)
		changed := !bytes.Equal(out, src)
		switch {
		case *check:
			if changed {
				fmt.Fprintln(c.Out, path)
				code = ExitInvalid
			}
		case !*write:
			_, _ = c.Out.Write(out)
		case changed:
			fi, err := os.Stat(path)
			if err != nil {
				fmt.Fprintf(c.Err, "error: %s: %v\n", path, unwrapPath(err))
				code = ExitInvalid
				continue
			}
			if err := os.WriteFile(path, out, fi.Mode().Perm()); err != nil {
				fmt.Fprintf(c.Err, "error: %s: %v\n", path, unwrapPath(err))
				code = ExitInvalid
				continue
			}
			fmt.Fprintln(c.Out, path)
		}
	}
	return code
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
