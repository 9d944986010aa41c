package command

import "github.com/hashicorp/cli"

// Commands returns every command of the CLI, keyed by its full name
// ("policy validate"). A parent with subcommands and no behaviour of its own
// is a group that prints its subcommands.
func Commands(m Meta) map[string]cli.CommandFactory {
	cmds := map[string]cli.CommandFactory{
		"version": func() (cli.Command, error) { return &VersionCommand{Meta: m}, nil },
	}
	for name, factory := range registered {
		f := factory
		cmds[name] = func() (cli.Command, error) { return f(m), nil }
	}
	return cmds
}

// registered holds commands added by the files of this package through
// register, so that each command's file is self-contained.
var registered = map[string]func(Meta) cli.Command{}

// register adds a command; it is called from init functions only.
func register(name string, f func(Meta) cli.Command) {
	if _, dup := registered[name]; dup {
		panic("command: duplicate command " + name)
	}
	registered[name] = f
}
