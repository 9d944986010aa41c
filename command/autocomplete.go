package command

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Shell completion. The completions themselves are answered by the CLI
// library (a shell runs `foreshape` with COMP_LINE set); installing them
// is done here, under $HOME (and $XDG_CONFIG_HOME for fish), so that it
// touches the files of the home the operator's shell reads, says which
// files it changed, and can be undone. Each shell whose startup file
// exists gets one line (bash, zsh) or one file (fish).

const (
	flagInstall   = "autocomplete-install"
	flagUninstall = "autocomplete-uninstall"
)

// completion is where completion is installed: the user's home, fish's
// config home and the binary the shells are to run.
type completion struct {
	home, configHome, bin string
}

// completionFromEnv reads $HOME, $XDG_CONFIG_HOME and the running binary.
func completionFromEnv() (completion, error) {
	home := os.Getenv("HOME")
	if home == "" {
		return completion{}, errors.New("HOME is not set, so there is no shell startup file to add completion to")
	}
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.Abs(bin)
	}
	if err != nil {
		return completion{}, fmt.Errorf("cannot tell where this foreshape binary is: %v", err)
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	return completion{home: home, configHome: cfg, bin: bin}, nil
}

// shellTarget is one shell's file that completion goes into.
type shellTarget struct {
	shell string
	path  string
}

// bashFiles are bash's startup files in the order bash reads them; the
// completion line goes into the first that exists.
var bashFiles = []string{".bashrc", ".bash_profile", ".bash_login", ".profile"}

// targets lists the shells whose startup file (or, for fish, config
// directory) exists.
func (c completion) targets() []shellTarget {
	var out []shellTarget
	for _, name := range bashFiles {
		if p := filepath.Join(c.home, name); isFile(p) {
			out = append(out, shellTarget{"bash", p})
			break
		}
	}
	if p := filepath.Join(c.home, ".zshrc"); isFile(p) {
		out = append(out, shellTarget{"zsh", p})
	}
	if fi, err := os.Stat(filepath.Join(c.configHome, "fish")); err == nil && fi.IsDir() {
		out = append(out, shellTarget{"fish", filepath.Join(c.configHome, "fish", "completions", "foreshape.fish")})
	}
	return out
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// bashcompinit lets zsh run bash completion commands (complete -C).
const bashcompinit = "autoload -U +X bashcompinit && bashcompinit"

// completeLine is the line bash and zsh run to complete foreshape.
func (c completion) completeLine(shell string) string {
	if shell == "zsh" {
		return "complete -o nospace -C " + shellQuote(c.bin) + " foreshape"
	}
	return "complete -C " + shellQuote(c.bin) + " foreshape"
}

// ourLine matches a completion line for foreshape, whichever binary it
// names (the binary may have moved since it was installed).
var ourLine = regexp.MustCompile(`^complete (-o nospace )?-C .+ foreshape$`)

// fishScript is the completion file for fish: it runs the binary as bash
// would, with COMP_LINE set to the command line so far.
func (c completion) fishScript() string {
	return fmt.Sprintf(`# foreshape's command completion (foreshape -autocomplete-install).
function __foreshape_complete
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    %s
end
complete -f -c foreshape -a "(__foreshape_complete)"
`, shellQuote(c.bin))
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9/._+:-]+$`)

// shellQuote quotes s for bash, zsh and fish when it holds anything but
// a plain path or URL (http://127.0.0.1:7575 stays bare; dc1/*/web, a
// glob to each of them, does not).
func shellQuote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// install adds completion to every target and returns what it did, a
// line per shell.
func (c completion) install() ([]string, error) {
	ts := c.targets()
	if len(ts) == 0 {
		return nil, fmt.Errorf("no shell startup file under %s: completion goes into ~/.bashrc (or ~/.bash_profile, ~/.bash_login, ~/.profile) for bash, ~/.zshrc for zsh, or %s for fish; create the one your shell reads and run this again",
			c.home, filepath.Join(c.configHome, "fish"))
	}
	var done []string
	for _, t := range ts {
		if t.shell == "fish" {
			if b, err := os.ReadFile(t.path); err == nil && string(b) == c.fishScript() {
				done = append(done, fmt.Sprintf("fish: already in %s", t.path))
				continue
			}
			if err := os.MkdirAll(filepath.Dir(t.path), 0o755); err != nil {
				return done, err
			}
			if err := os.WriteFile(t.path, []byte(c.fishScript()), 0o644); err != nil {
				return done, err
			}
			done = append(done, fmt.Sprintf("fish: wrote %s", t.path))
			continue
		}
		b, err := os.ReadFile(t.path)
		if err != nil {
			return done, err
		}
		lines := strings.Split(string(b), "\n")
		want := c.completeLine(t.shell)
		if containsLine(lines, want) {
			done = append(done, fmt.Sprintf("%s: already in %s", t.shell, t.path))
			continue
		}
		if hasLine(lines, ourLine.MatchString) {
			// Installed for a binary elsewhere: replace that line.
			if err := c.removeLines(t.path); err != nil {
				return done, err
			}
			if b, err = os.ReadFile(t.path); err != nil {
				return done, err
			}
			lines = strings.Split(string(b), "\n")
		}
		add, added := want+"\n", fmt.Sprintf("%q", want)
		if t.shell == "zsh" && !containsLine(lines, bashcompinit) {
			add, added = bashcompinit+"\n"+add, fmt.Sprintf("%q and %q", bashcompinit, want)
		}
		if len(b) > 0 && !strings.HasSuffix(string(b), "\n") {
			add = "\n" + add
		}
		if err := appendFile(t.path, add); err != nil {
			return done, err
		}
		done = append(done, fmt.Sprintf("%s: added %s to %s", t.shell, added, t.path))
	}
	return done, nil
}

// uninstall removes what install added (zsh's bashcompinit line stays:
// other completions may need it) and returns what it did.
func (c completion) uninstall() ([]string, error) {
	var done []string
	for _, t := range c.targets() {
		if t.shell == "fish" {
			err := os.Remove(t.path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case err != nil:
				return done, err
			}
			done = append(done, fmt.Sprintf("fish: removed %s", t.path))
			continue
		}
		b, err := os.ReadFile(t.path)
		if err != nil {
			return done, err
		}
		if !hasLine(strings.Split(string(b), "\n"), ourLine.MatchString) {
			continue
		}
		if err := c.removeLines(t.path); err != nil {
			return done, err
		}
		msg := fmt.Sprintf("%s: removed foreshape's completion line from %s", t.shell, t.path)
		if t.shell == "zsh" && containsLine(strings.Split(string(b), "\n"), bashcompinit) {
			msg += " (its bashcompinit line stays: other completions may use it)"
		}
		done = append(done, msg)
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("foreshape's completion is not installed in any shell startup file under %s", c.home)
	}
	return done, nil
}

// removeLines rewrites path without foreshape's completion lines, keeping
// its permissions.
func (c completion) removeLines(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !ourLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	tmp := path + ".foreshape-tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(keep, "\n")), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func containsLine(lines []string, want string) bool {
	return hasLine(lines, func(l string) bool { return l == want })
}

func hasLine(lines []string, match func(string) bool) bool {
	for _, l := range lines {
		if match(l) {
			return true
		}
	}
	return false
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// autocompleteFlag reports whether args ask to install or uninstall
// completion (-autocomplete-install or -autocomplete-uninstall before any
// command), and which.
func autocompleteFlag(args []string) (install, uninstall bool) {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			break
		}
		switch strings.TrimLeft(a, "-") {
		case flagInstall:
			install = true
		case flagUninstall:
			uninstall = true
		}
	}
	return install, uninstall
}

// runAutocomplete installs or uninstalls completion and prints what it
// changed.
func runAutocomplete(args []string, m Meta) int {
	install, uninstall := autocompleteFlag(args)
	usage := func(msg string) int {
		m.UI.Error("error: " + msg + "\n\nRun 'foreshape -help' for usage.")
		return ExitUsage
	}
	if install && uninstall {
		return usage("-autocomplete-install and -autocomplete-uninstall: choose one")
	}
	if len(args) != 1 {
		return usage(fmt.Sprintf("%s takes nothing else, got %q", args[0], strings.Join(args[1:], " ")))
	}
	c, err := completionFromEnv()
	if err != nil {
		m.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	do := c.install
	if uninstall {
		do = c.uninstall
	}
	done, err := do()
	for _, d := range done {
		m.UI.Output(d)
	}
	if err != nil {
		m.UI.Error("error: " + err.Error())
		return ExitInvalid
	}
	if install {
		m.UI.Output("Completion works in shells started from now on.")
	}
	return ExitOK
}
