package command

import (
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

func (c *groupCommand) Run(args []string) int { return cli.RunResultHelp }

// group registers a parent command.
func group(name, synopsis, help string) {
	register(name, func(m Meta) cli.Command {
		return &groupCommand{Meta: m, name: name, synopsis: synopsis, help: help}
	})
}
