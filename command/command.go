// Package command is foreshape's command-line interface: the agent, the
// operator commands, the simulator and the evaluation tools.
//
// Commands are thin: they parse flags, call into the packages that own the
// logic (config, policies, agent, sim, agent/forecast) or into the agent's
// HTTP API, and print. A command never holds domain logic of its own, and
// never calls os.Exit: it returns one of the exit codes below.
package command

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/cli"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0 // success
	ExitInvalid = 1 // the input (a file, a request, the cluster) was invalid or the operation failed
	ExitUsage   = 2 // the command line itself was wrong
)

// Meta carries what every command needs: the UI and the process context.
type Meta struct {
	Ctx context.Context
	UI  cli.Ui
	Out io.Writer // standard output, for machine-readable output and tables
	Err io.Writer // standard error, for progress and diagnostics
}

// FlagSet returns a flag set that reports errors instead of exiting. Parse
// prints the command's help on -h, and for a flag error the error and
// where the help is, not the whole help before it.
func (m *Meta) FlagSet(name string, help func() string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args and turns a flag error into ExitUsage with a message
// that names the problem and points at -help. ok is false when the caller
// must return code.
func (m *Meta) Parse(fs *flag.FlagSet, args []string, help func() string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.UI.Output(help())
			return ExitOK, false
		}
		m.UI.Error(fmt.Sprintf("error: %v\n\nRun 'foreshape %s -help' for usage.", err, fs.Name()))
		return ExitUsage, false
	}
	// A value the flag package did not check (a default from the
	// environment, a secret) is checked now, as a flag's would be.
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if c, ok := f.Value.(interface{ checkParsed() error }); ok && err == nil {
			err = c.checkParsed()
		}
	})
	if err != nil {
		m.UI.Error(fmt.Sprintf("error: %v\n\nRun 'foreshape %s -help' for usage.", err, fs.Name()))
		return ExitUsage, false
	}
	return ExitOK, true
}

// UsageError prints msg and a pointer at the command's help, and returns ExitUsage.
func (m *Meta) UsageError(cmd, msg string) int {
	m.UI.Error(fmt.Sprintf("error: %s\n\nRun 'foreshape %s -help' for usage.", msg, cmd))
	return ExitUsage
}

// Run runs the CLI with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Errors and warnings are red and yellow on a terminal.
	var ui cli.Ui = &cli.BasicUi{Reader: os.Stdin, Writer: stdout, ErrorWriter: stderr}
	if colourOn(isTerminal(stderr), args, os.Getenv) {
		ui = &cli.ColoredUi{Ui: ui, ErrorColor: cli.UiColorRed, WarnColor: cli.UiColorYellow}
	}
	meta := Meta{Ctx: ctx, UI: ui, Out: stdout, Err: stderr}
	if install, uninstall := autocompleteFlag(args); (install || uninstall) && os.Getenv("COMP_LINE") == "" {
		return runAutocomplete(args, meta)
	}
	commands := Commands(meta)
	if os.Getenv("COMP_LINE") == "" {
		if flag, ok := optionBeforeCommand(args); ok {
			fmt.Fprintf(stderr, "error: %s is not an option of foreshape itself (those are -version, -help, -autocomplete-install, -autocomplete-uninstall); a command's options come after its name, as in 'foreshape status -json'\n\nRun 'foreshape -help' for the commands.\n", flag)
			return ExitUsage
		}
	}
	// The library writes the command list to errs for a missing or
	// unknown command; an unknown one is named first.
	var errs bytes.Buffer
	c := &cli.CLI{
		Name:        "foreshape",
		Version:     "foreshape " + Version(),
		Args:        args,
		Commands:    commands,
		HelpFunc:    helpFunc(commands),
		HelpWriter:  stdout,
		ErrorWriter: &errs,
		// Completion requests (COMP_LINE set); -autocomplete-install and
		// -autocomplete-uninstall are handled by runAutocomplete.
		Autocomplete: true,
	}
	code, err := c.Run()
	if code == 127 && c.Subcommand() != "" {
		fmt.Fprintf(stderr, "error: unknown command %q%s\n\n", c.Subcommand(), didYouMean(c.Subcommand(), commands))
	}
	_, _ = stderr.Write(errs.Bytes())
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitInvalid
	}
	switch code {
	case 127: // no command, or an unknown one
		return ExitUsage
	case cli.RunResultHelp:
		return ExitUsage
	}
	return code
}

// optionBeforeCommand returns the first option in args, before the
// command's name, that is not one of foreshape's own (-version, -help,
// -autocomplete-install, -autocomplete-uninstall): a command's option put
// before the command, which the library would refuse with exit 1.
func optionBeforeCommand(args []string) (string, bool) {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return "", false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "v", "version", "h", "help", "autocomplete-install", "autocomplete-uninstall":
		default:
			return a, true
		}
	}
	return "", false
}

// didYouMean suggests the top-level commands within two edits of name,
// or that start with it: " (did you mean status?)", or "".
func didYouMean(name string, commands map[string]cli.CommandFactory) string {
	var near []string
	for c := range commands {
		if strings.Contains(c, " ") {
			continue
		}
		if strings.HasPrefix(c, name) || levenshtein.Distance(name, c, nil) <= 2 {
			near = append(near, c)
		}
	}
	if len(near) == 0 {
		return ""
	}
	sort.Strings(near)
	return " (did you mean " + strings.Join(near, " or ") + "?)"
}

// helpFunc lists top-level commands with their synopses.
func helpFunc(commands map[string]cli.CommandFactory) cli.HelpFunc {
	return func(map[string]cli.CommandFactory) string {
		var names []string
		width := 0
		for name := range commands {
			if strings.Contains(name, " ") {
				continue
			}
			names = append(names, name)
			width = max(width, len(name))
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("Usage: foreshape [-version] [-help] [-autocomplete-install] [-autocomplete-uninstall] <command> [args]\n\n")
		b.WriteString("foreshape forecasts each Nomad locality's CPU, memory and IOPS with quantile\n")
		b.WriteString("bands, predicts hotspots before congestion shows, and acts ahead of them:\n")
		b.WriteString("it holds room for migrations with placeholder jobs, scales early and runs\n")
		b.WriteString("the migration queue in the order that relieves the most pressure.\n\n")
		b.WriteString("Commands:\n")
		for _, name := range names {
			cmd, err := commands[name]()
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "    %-*s  %s\n", width, name, cmd.Synopsis())
		}
		b.WriteString("\nRun 'foreshape <command> -help' for a command's usage and examples.\n")
		b.WriteString("Run 'foreshape -autocomplete-install' once to complete commands in bash, zsh\n")
		b.WriteString("and fish, each whose startup file (fish: config directory) exists: it adds a\n")
		b.WriteString("line to ~/.bashrc (else bash's first of ~/.bash_profile, ~/.bash_login,\n")
		b.WriteString("~/.profile) and to ~/.zshrc (after zsh's bashcompinit line, added when\n")
		b.WriteString("missing), writes fish/completions/foreshape.fish under ~/.config (or\n")
		b.WriteString("$XDG_CONFIG_HOME), and prints each file it changed.\n")
		b.WriteString("'foreshape -autocomplete-uninstall' removes them (bashcompinit's line stays:\n")
		b.WriteString("other completions may use it).\n")
		return b.String()
	}
}

// colourOn decides whether output may be coloured: only on a terminal,
// never when NO_COLOR is set or TERM is "dumb", and never with -json (a
// script reads that output, and errors beside it stay plain too).
func colourOn(terminal bool, args []string, getenv func(string) string) bool {
	if !terminal || getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "json" {
			return false
		}
	}
	return true
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
