package command

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X github.com/foreshape/foreshape/command.version=…".
var version = "0.1.0-dev"

// Version returns foreshape's version with the VCS revision when the binary
// carries one.
func Version() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// VersionCommand prints the version.
type VersionCommand struct{ Meta }

func (c *VersionCommand) Synopsis() string { return "Print foreshape's version" }

func (c *VersionCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape version

  Prints the version of this foreshape binary.

Example:

  $ foreshape version
  foreshape 0.1.0-dev (1a2b3c4d5e6f)
`)
}

func (c *VersionCommand) Run(args []string) int {
	fs := c.FlagSet("version", c.Help)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("version", "version takes no arguments")
	}
	fmt.Fprintf(c.Out, "foreshape %s\n", Version())
	return ExitOK
}
