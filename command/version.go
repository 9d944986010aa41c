package command

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version and revision are set at build time with -ldflags "-X
// github.com/foreshape/foreshape/command.version=… -X
// github.com/foreshape/foreshape/command.revision=…"; make build sets
// revision from `git describe`.
var (
	version  = "0.1.0-dev"
	revision = ""
)

// Version returns foreshape's version and what it was built from.
func Version() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, revision, info)
}

// versionOf says what a binary was built from, in this order: the
// revision stamped with -ldflags (make build), the VCS revision Go
// recorded (go build in a git checkout, unless -buildvcs=false), the
// module version Go recorded (go install …@version), else that it is
// unknown.
func versionOf(version, stamped string, info *debug.BuildInfo) string {
	if stamped != "" {
		return version + " (" + stamped + ")"
	}
	var rev, modified string
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	switch {
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "-dirty"
		}
		return version + " (" + rev + ")"
	case info != nil && info.Main.Version != "" && info.Main.Version != "(devel)":
		return version + " (module " + info.Main.Version + ")"
	}
	return version + " (revision unknown)"
}

// VersionCommand prints the version.
type VersionCommand struct{ Meta }

func (c *VersionCommand) Synopsis() string { return "Print foreshape's version" }

func (c *VersionCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape version

  Prints the version of this foreshape binary and what it was built from:
  the git revision make build stamps (with -dirty when the tree had
  uncommitted changes), else the one go build recorded from the checkout,
  else the module version go install recorded, else "revision unknown"
  (a build without VCS information, such as go build -buildvcs=false or
  outside a git checkout: build with make build to stamp it). foreshape
  status and the Consul service's meta show the same text.

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
