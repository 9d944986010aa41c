package command

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAutocompleteInstall: `foreshape -autocomplete-install` adds one
// completion line to bash's first startup file and to .zshrc, and a
// completion file for fish, under $HOME (not the password database's
// home), says which files it changed, changes nothing the second time;
// -autocomplete-uninstall takes them out again.
func TestAutocompleteInstall(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("SHELL", "/bin/bash")
	t.Setenv("COMP_LINE", "")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bashrc, profile, zshrc := filepath.Join(home, ".bashrc"), filepath.Join(home, ".profile"), filepath.Join(home, ".zshrc")
	fishFile := filepath.Join(home, ".config", "fish", "completions", "foreshape.fish")
	const bashBefore = "export PATH=$PATH:/opt/bin\n"
	write(t, bashrc, bashBefore)
	write(t, profile, "# read by login shells\n") // bash's first file is .bashrc
	write(t, zshrc, "")
	if err := os.MkdirAll(filepath.Join(home, ".config", "fish"), 0o755); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "-autocomplete-install")
	if code != ExitOK {
		t.Fatalf("install exited %d: %s", code, stderr)
	}
	bashLine := "complete -C " + shellQuote(bin) + " foreshape"
	zshLine := "complete -o nospace -C " + shellQuote(bin) + " foreshape"
	if got := read(t, bashrc); got != bashBefore+bashLine+"\n" {
		t.Errorf(".bashrc holds %q", got)
	}
	if got := read(t, profile); got != "# read by login shells\n" {
		t.Errorf(".profile changed: %q", got)
	}
	if got := read(t, zshrc); got != bashcompinit+"\n"+zshLine+"\n" {
		t.Errorf(".zshrc holds %q", got)
	}
	if got := read(t, fishFile); !strings.Contains(got, `complete -f -c foreshape -a "(__foreshape_complete)"`) || !strings.Contains(got, shellQuote(bin)) {
		t.Errorf("foreshape.fish holds %q", got)
	}
	for _, f := range []string{bashrc, zshrc, fishFile} {
		if !strings.Contains(stdout, f) {
			t.Errorf("install does not say it changed %s:\n%s", f, stdout)
		}
	}
	// It says it added bashcompinit's line to .zshrc too.
	if want := "zsh: added \"" + bashcompinit + "\" and"; !strings.Contains(stdout, want) {
		t.Errorf("install does not say %q:\n%s", want, stdout)
	}
	// bash takes the line as a completion for foreshape.
	if sh, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(sh, "--norc", "--noprofile", "-c", "source "+shellQuote(bashrc)+" && complete -p foreshape").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-C") || !strings.Contains(string(out), bin) {
			t.Errorf("bash after sourcing .bashrc: %v\n%s", err, out)
		}
	}

	// Installing again changes nothing.
	before := []string{read(t, bashrc), read(t, zshrc), read(t, fishFile)}
	if code, stdout, stderr := run(t, "-autocomplete-install"); code != ExitOK || !strings.Contains(stdout, "already in "+bashrc) {
		t.Fatalf("second install exited %d:\n%s%s", code, stdout, stderr)
	}
	if after := []string{read(t, bashrc), read(t, zshrc), read(t, fishFile)}; strings.Join(after, "\x00") != strings.Join(before, "\x00") {
		t.Errorf("a second install changed the files:\n%q\n%q", before, after)
	}

	code, stdout, stderr = run(t, "-autocomplete-uninstall")
	if code != ExitOK {
		t.Fatalf("uninstall exited %d: %s", code, stderr)
	}
	if got := read(t, bashrc); got != bashBefore {
		t.Errorf(".bashrc after uninstall holds %q, want %q", got, bashBefore)
	}
	// bashcompinit's line stays, and the uninstall says so.
	if got := read(t, zshrc); got != bashcompinit+"\n" {
		t.Errorf(".zshrc after uninstall holds %q, want only bashcompinit's line", got)
	}
	if want := "from " + zshrc + " (its bashcompinit line stays: other completions may use it)"; !strings.Contains(stdout, want) {
		t.Errorf("uninstall does not say %q:\n%s", want, stdout)
	}
	if _, err := os.Stat(fishFile); !os.IsNotExist(err) {
		t.Errorf("foreshape.fish after uninstall: %v", err)
	}
	for _, f := range []string{bashrc, zshrc, fishFile} {
		if !strings.Contains(stdout, f) {
			t.Errorf("uninstall does not say it changed %s:\n%s", f, stdout)
		}
	}
	if code, _, stderr := run(t, "-autocomplete-uninstall"); code != ExitInvalid || !strings.Contains(stderr, "not installed") {
		t.Errorf("uninstall of nothing exited %d: %s", code, stderr)
	}
}

// TestAutocompleteInstallRefusals: without a startup file, with both
// flags or with more arguments, nothing is written and the error says why.
func TestAutocompleteInstallRefusals(t *testing.T) {
	t.Setenv("COMP_LINE", "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no startup file", []string{"-autocomplete-install"}, ExitInvalid, "no shell startup file under"},
		{"both", []string{"-autocomplete-install", "-autocomplete-uninstall"}, ExitUsage, "choose one"},
		{"more arguments", []string{"-autocomplete-install", "agent"}, ExitUsage, `takes nothing else, got "agent"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", "")
			code, _, stderr := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, %q; want %d, %q", code, stderr, tc.code, tc.want)
			}
			if entries, _ := os.ReadDir(home); len(entries) != 0 {
				t.Errorf("wrote %v into HOME", entries)
			}
		})
	}
}

// TestAutocompleteInstallReplacesAMovedBinary: a line left by a binary
// installed elsewhere is replaced, not kept beside the new one; fish's
// file goes under $XDG_CONFIG_HOME when that is set.
func TestAutocompleteInstallReplacesAMovedBinary(t *testing.T) {
	home, xdg := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", xdg)
	if err := os.Mkdir(filepath.Join(xdg, "fish"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COMP_LINE", "")
	bashrc := filepath.Join(home, ".bashrc")
	write(t, bashrc, "alias k=kubectl\ncomplete -C /old/bin/foreshape foreshape\n")
	if code, _, stderr := run(t, "-autocomplete-install"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bin, _ := os.Executable()
	if got, want := read(t, bashrc), "alias k=kubectl\ncomplete -C "+shellQuote(bin)+" foreshape\n"; got != want {
		t.Errorf(".bashrc holds %q, want %q", got, want)
	}
	if got := read(t, filepath.Join(xdg, "fish", "completions", "foreshape.fish")); !strings.Contains(got, "complete -f -c foreshape") {
		t.Errorf("foreshape.fish under XDG_CONFIG_HOME holds %q", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
