package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAutocompleteInstallWithoutBashrc: as the README says, without
// ~/.bashrc the line goes into the first of bash's other startup files
// that exists (here ~/.bash_login, not ~/.profile after it), and only the
// shells whose file exists get one: no ~/.zshrc or fish file is made.
func TestAutocompleteInstallWithoutBashrc(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("COMP_LINE", "")
	login, profile := filepath.Join(home, ".bash_login"), filepath.Join(home, ".profile")
	write(t, login, "# login\n")
	write(t, profile, "# profile\n")
	code, stdout, stderr := run(t, "-autocomplete-install")
	if code != ExitOK {
		t.Fatalf("install exited %d: %s", code, stderr)
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, login); got != "# login\ncomplete -C "+shellQuote(bin)+" foreshape\n" {
		t.Errorf(".bash_login holds %q", got)
	}
	if got := read(t, profile); got != "# profile\n" {
		t.Errorf(".profile changed: %q", got)
	}
	if !strings.Contains(stdout, login) || strings.Contains(stdout, profile) {
		t.Errorf("install says:\n%s\nwant it to name %s alone", stdout, login)
	}
	for _, p := range []string{filepath.Join(home, ".zshrc"), filepath.Join(home, ".config")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("install made %s, for a shell whose file did not exist (%v)", p, err)
		}
	}
}
