package command

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/cli"
)

// groupCommand is a parent command ("policy", "forecast") that only lists
// its subcommands; running it without one is a usage error.
type groupCommand struct {
	Meta
	name     string
	synopsis string
	help     string
}

func (c *groupCommand) Synopsis() string { return c.synopsis }

func (c *groupCommand) Help() string { return strings.TrimSpace(c.help) }

// Run prints the help and the subcommands, as -help does, and fails as a
// usage error: a group does nothing by itself.
func (c *groupCommand) Run(args []string) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.UI.Error(fmt.Sprintf("error: %q is not a subcommand of %s\n", args[0], c.name))
	}
	var b strings.Builder
	b.WriteString(c.Help())
	b.WriteString("\n\nSubcommands:\n")
	for _, name := range c.subcommands() {
		fmt.Fprintf(&b, "    %-*s    %s\n", c.width(), name, registered[c.name+" "+name](c.Meta).Synopsis())
	}
	c.UI.Error(strings.TrimRight(b.String(), "\n"))
	return ExitUsage
}

// subcommands are the names of the group's direct subcommands, sorted.
func (c *groupCommand) subcommands() []string {
	var out []string
	for name := range registered {
		if rest, ok := strings.CutPrefix(name, c.name+" "); ok && !strings.Contains(rest, " ") {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

func (c *groupCommand) width() int {
	w := 0
	for _, s := range c.subcommands() {
		w = max(w, len(s))
	}
	return w
}

// group registers a parent command.
func group(name, synopsis, help string) {
	register(name, func(m Meta) cli.Command {
		return &groupCommand{Meta: m, name: name, synopsis: synopsis, help: help}
	})
}
