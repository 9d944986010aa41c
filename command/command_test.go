package command

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/cli"
)

func TestColourOn(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		name     string
		terminal bool
		args     []string
		getenv   func(string) string
		want     bool
	}{
		{"a terminal", true, []string{"status"}, env(), true},
		{"not a terminal", false, []string{"status"}, env(), false},
		{"-json", true, []string{"status", "-json"}, env(), false},
		{"--json=true", true, []string{"queue", "list", "--json=true"}, env(), false},
		{"json as an argument after --", true, []string{"forecast", "show", "--", "-json"}, env(), true},
		{"a locality named json", true, []string{"forecast", "show", "json"}, env(), true},
		{"NO_COLOR", true, []string{"status"}, env("NO_COLOR", "1"), false},
		{"TERM=dumb", true, []string{"status"}, env("TERM", "dumb"), false},
	} {
		if got := colourOn(c.terminal, c.args, c.getenv); got != c.want {
			t.Errorf("%s: colourOn = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestErrorsArePlainOffATerminal(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"status", "-address", "127.0.0.1:1"}, &out, &errb); code != ExitInvalid {
		t.Fatalf("exit %d, want %d", code, ExitInvalid)
	}
	if !strings.Contains(errb.String(), "error:") || strings.Contains(errb.String(), "\x1b[") {
		t.Errorf("stderr %q: want a plain error", errb.String())
	}
}

// TestAutocompleteFlags: -help names the completion flags
// (TestAutocompleteInstall runs them).
func TestAutocompleteFlags(t *testing.T) {
	var out, errb bytes.Buffer
	Run(context.Background(), []string{"-help"}, &out, &errb)
	if !strings.Contains(out.String(), "-autocomplete-install") || !strings.Contains(out.String(), "-autocomplete-uninstall") {
		t.Errorf("-help does not mention -autocomplete-install and -uninstall:\n%s", out.String())
	}
}

// TestCompletion answers the shell's completion request (COMP_LINE) with the
// commands that match, on standard output as bash's complete -C expects.
func TestCompletion(t *testing.T) {
	for line, want := range map[string]string{
		"foreshape sta":        "status",
		"foreshape policy va":  "validate",
		"foreshape forecast s": "show",
	} {
		t.Setenv("COMP_LINE", line)
		t.Setenv("COMP_POINT", "")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		code := Run(context.Background(), strings.Fields(line)[1:], io.Discard, io.Discard)
		os.Stdout = stdout
		w.Close()
		got, _ := io.ReadAll(r)
		if code != ExitOK || strings.TrimSpace(string(got)) != want {
			t.Errorf("completing %q: exit %d, offered %q, want %q", line, code, got, want)
		}
	}
}

// TestGroupsListTheirSubcommands: a command that only groups others lists
// every subcommand once, in -help and when run without one; without a
// subcommand (or with an unknown one) it is a usage error, exit 2, as the
// README says.
func TestGroupsListTheirSubcommands(t *testing.T) {
	for _, group := range []string{"config", "policy", "forecast", "sim", "queue", "operator", "operator raft"} {
		var subs []string
		for name := range registered {
			if rest, ok := strings.CutPrefix(name, group+" "); ok && !strings.Contains(rest, " ") {
				subs = append(subs, rest)
			}
		}
		for _, args := range [][]string{{"-help"}, nil, {"nonsense"}} {
			code, out, errOut := run(t, append(strings.Fields(group), args...)...)
			text := out + errOut
			wantCode := ExitUsage
			if len(args) > 0 && args[0] == "-help" {
				wantCode = ExitOK
			}
			if code != wantCode {
				t.Errorf("%s %v: exit %d, want %d", group, args, code, wantCode)
			}
			if n := strings.Count(text, "Subcommands:"); n != 1 {
				t.Errorf("%s %v: %d subcommand lists, want 1:\n%s", group, args, n, text)
			}
			for _, s := range subs {
				if !regexp.MustCompile(`(?m)^ +` + regexp.QuoteMeta(s) + ` +\S`).MatchString(text) {
					t.Errorf("%s %v does not list %q:\n%s", group, args, s, text)
				}
			}
			if len(args) > 0 && args[0] == "nonsense" && !strings.Contains(errOut, `"nonsense"`) {
				t.Errorf("%s nonsense: the error does not name the unknown subcommand:\n%s", group, errOut)
			}
		}
	}
}

// TestTopLevelUsageErrors: a mistyped command is named, with the commands
// near it, before the list of commands; a command's option put before the
// command is a usage error (exit 2, as the README promises, where the
// library exited 1) saying where options go; -version prints what
// 'foreshape version' prints.
func TestTopLevelUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stderr     string
		stdoutWant string
	}{
		{[]string{"statsu"}, ExitUsage, `error: unknown command "statsu" (did you mean status?)`, ""},
		{[]string{"qeue", "list"}, ExitUsage, `error: unknown command "qeue" (did you mean queue?)`, ""},
		{[]string{"frobnicate"}, ExitUsage, "error: unknown command \"frobnicate\"\n\nUsage: foreshape", ""},
		{[]string{"-json", "status"}, ExitUsage, "error: -json is not an option of foreshape itself", ""},
		{[]string{"-address=http://x:1", "status"}, ExitUsage, "a command's options come after its name", ""},
		{nil, ExitUsage, "Usage: foreshape", ""},
		{[]string{"-version"}, ExitOK, "", "foreshape " + Version() + "\n"},
		{[]string{"-help"}, ExitOK, "", "Usage: foreshape"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) || (tc.stdoutWant != "" && !strings.HasPrefix(out, tc.stdoutWant)) {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit %d, stderr with %q, stdout from %q", tc.args, code, out, errOut, tc.code, tc.stderr, tc.stdoutWant)
		}
	}
	if _, v, _ := run(t, "version"); v != "foreshape "+Version()+"\n" {
		t.Errorf("version prints %q", v)
	}
}

// TestFlagErrorsAreShort: a mistyped flag prints the error and where the
// help is, not the whole help above it; remove-peer, whose agent answers
// nothing to print, neither takes nor lists -json.
func TestFlagErrorsAreShort(t *testing.T) {
	code, out, errOut := run(t, "status", "-adress", "http://127.0.0.1:1")
	if code != ExitUsage || errOut != "error: flag provided but not defined: -adress\n\nRun 'foreshape status -help' for usage.\n" || out != "" {
		t.Errorf("status -adress: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := run(t, "operator", "raft", "remove-peer", "-json", "-id", "x"); code != ExitUsage || !strings.Contains(errOut, "-json") {
		t.Errorf("remove-peer -json: exit %d, %q; want a usage error", code, errOut)
	}
	if help := (&RaftRemovePeerCommand{}).Help(); strings.Contains(help, "-json") || !strings.Contains(help, "-address=ADDR") {
		t.Errorf("remove-peer's help lists -json, or lost the client flags:\n%s", help)
	}
	if help := (&RaftListPeersCommand{}).Help(); !strings.Contains(help, "-json") {
		t.Errorf("list-peers's help lost -json:\n%s", help)
	}
}

// TestHelpNamesOnlyItsFlags: every option a command's -help names (in its
// Options, its prose and its examples) is one the command takes: the
// command run with -FLAG=1 and then -help (which the command's own flag
// parsing reaches only after -FLAG) never says "not defined". A flag
// renamed or dropped while its help still names it fails here.
func TestHelpNamesOnlyItsFlags(t *testing.T) {
	named := regexp.MustCompile(`(?:^|[\s,(|'])(-[a-z][a-z0-9-]*)`)
	nomadCommand := regexp.MustCompile(`'nomad [^']*'`)
	checked := 0
	for name, factory := range registered {
		help := factory(Meta{}).Help()
		if strings.Contains(help, "Subcommands:") {
			continue // a group: its subcommands are checked themselves
		}
		help = nomadCommand.ReplaceAllString(help, "") // Nomad's own flags
		seen := map[string]bool{}
		for _, m := range named.FindAllStringSubmatch(help, -1) {
			flag := m[1]
			if seen[flag] || flag == "-help" {
				continue
			}
			seen[flag] = true
			// -FLAG=1 sets any kind of flag (a duration refuses the value,
			// naming the flag); -help then stops before the command runs.
			// The command is run directly: the CLI library would answer
			// any -help in the arguments itself, unparsed.
			var out, errb bytes.Buffer
			cmd := factory(Meta{Ctx: context.Background(), UI: &cli.BasicUi{Writer: &out, ErrorWriter: &errb}, Out: &out, Err: &errb})
			cmd.Run([]string{flag + "=1", "-help"})
			if strings.Contains(errb.String(), "not defined") {
				t.Errorf("%s -help names %s, which %s does not take: %s", name, flag, name, strings.TrimSpace(errb.String()))
			}
			checked++
		}
	}
	if checked < 100 {
		t.Errorf("checked %d flags named by the commands' help, want the ~190 there are", checked)
	}
}
