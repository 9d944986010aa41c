package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/command"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// docFiles are the operator-facing documents whose commands must run.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "README.md", "sim/README.md")
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// help runs `foreshape ARGS -help` and returns its exit code and text.
func help(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := command.Run(context.Background(), append(slices.Clone(args), "-help"), &out, &errb)
	return code, out.String() + errb.String()
}

// subcommands are the names a command's help lists under "Commands:"
// (foreshape's) or "Subcommands:" (a group's).
func subcommands(text string) []string {
	_, list, ok := strings.Cut(text, "\nSubcommands:\n")
	if !ok {
		if _, list, ok = strings.Cut(text, "\nCommands:\n"); !ok {
			return nil
		}
	}
	var names []string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "    ") {
			names = append(names, f[0])
		}
	}
	return names
}

// words splits a shell command line into words: double and single quotes
// group, and it stops at a pipe, a comment or a command separator.
func words(line string) []string {
	var ws []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				ws = append(ws, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		ws = append(ws, cur.String())
	}
	for i, w := range ws {
		if w == "|" || w == "#" || w == "&&" || w == ";" || w == ">" {
			return ws[:i]
		}
	}
	return ws
}

// checkCommand checks that args (what follows "foreshape") names a real
// command and that every flag it uses is one that command's -help lists.
// A mention (in prose) may name a command group alone.
func checkCommand(args []string, mention bool) []string {
	var path []string
	code, text := help()
	if code != command.ExitOK {
		return []string{"foreshape -help fails"}
	}
	var problems []string
	var flags []string
	for _, w := range args {
		w = strings.TrimSuffix(strings.TrimPrefix(w, "["), "]") // [-flag VALUE] in a synopsis
		if strings.HasPrefix(w, "-") {
			flags = append(flags, strings.TrimLeft(strings.SplitN(w, "=", 2)[0], "-"))
			continue
		}
		subs := subcommands(text)
		if len(subs) == 0 || len(flags) > 0 {
			continue // an argument of the command
		}
		if alts := strings.Split(w, "|"); len(alts) > 1 {
			for _, a := range alts {
				if !slices.Contains(subs, a) {
					problems = append(problems, strings.Join(append(path, a), " ")+" is not a command")
				}
			}
			return problems
		}
		if !slices.Contains(subs, w) {
			return append(problems, strings.Join(append(path, w), " ")+" is not a command")
		}
		path = append(path, w)
		if code, text = help(path...); code != command.ExitOK {
			return append(problems, "foreshape "+strings.Join(path, " ")+" -help exits "+strconv.Itoa(code))
		}
	}
	if !mention && len(path) > 0 && len(subcommands(text)) > 0 {
		problems = append(problems, "foreshape "+strings.Join(path, " ")+" names no subcommand")
	}
	for _, f := range flags {
		if f == "help" || f == "h" {
			continue
		}
		if !regexp.MustCompile(`(?m)(^|[\s,(\[])-` + regexp.QuoteMeta(f) + `([=\s,)\]]|$)`).MatchString(text) {
			problems = append(problems, "foreshape "+strings.Join(path, " ")+" has no flag -"+f)
		}
	}
	return problems
}

var (
	// docCommand is a command in a code block: "bin/foreshape …",
	// "$ foreshape …", "go run . …" (the README's), after an optional
	// environment assignment.
	docCommand = regexp.MustCompile(`^\s*(?:\$\s+)?(?:[A-Z_]+=\S+\s+)*(?:bin/foreshape|foreshape|go run \.)\s+(.*)$`)
	// inlineCommand is a command quoted in prose: `foreshape …`.
	inlineCommand = regexp.MustCompile("`(?:bin/)?foreshape\\s+([^`]+)`")
)

// TestDocumentedCommandsExist: every foreshape command the README, docs/
// and every command's -help examples show is a command foreshape has,
// with flags that command takes.
func TestDocumentedCommandsExist(t *testing.T) {
	type use struct {
		where, line string
		mention     bool
	}
	var uses []use
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		inBlock := false
		for i, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inBlock = !inBlock
				continue
			}
			if inBlock {
				if m := docCommand.FindStringSubmatch(line); m != nil {
					uses = append(uses, use{f + ":" + strconv.Itoa(i+1), m[1], false})
				}
			}
		}
		for _, m := range inlineCommand.FindAllStringSubmatch(text, -1) {
			uses = append(uses, use{f, strings.Join(strings.Fields(m[1]), " "), true})
		}
	}
	// Every command's -help examples.
	var walk func(path []string)
	walk = func(path []string) {
		_, text := help(path...)
		for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
			if m := docCommand.FindStringSubmatch(line); m != nil && strings.Contains(line, "$ ") {
				uses = append(uses, use{"foreshape " + strings.Join(path, " ") + " -help", m[1], false})
			}
		}
		for _, s := range subcommands(text) {
			walk(append(slices.Clone(path), s))
		}
	}
	walk(nil)
	t.Logf("%d documented commands", len(uses))
	if len(uses) < 50 {
		t.Fatalf("found only %d documented commands: the scan is broken", len(uses))
	}
	for _, u := range uses {
		args := words(u.line)
		if len(args) == 0 {
			continue
		}
		for _, p := range checkCommand(args, u.mention) {
			t.Errorf("%s: %q: %s", u.where, u.line, p)
		}
	}
}

// TestCheckCommand: the check behind TestDocumentedCommandsExist refuses
// a command foreshape lacks, a group without its subcommand and a flag
// the command does not take.
func TestCheckCommand(t *testing.T) {
	for _, tc := range []struct {
		line    string
		mention bool
		want    string
	}{
		{`queue submit -node n1 -target dc2 -reason "rack a"`, false, ""},
		{`operator raft list-peers -address http://10.0.0.11:7575 -json`, false, ""},
		{`-autocomplete-install`, false, ""},
		{`sim`, true, ""},
		{`sim`, false, "foreshape sim names no subcommand"},
		{`queue lsit`, false, "queue lsit is not a command"},
		{`queue list|show|nope`, true, "queue nope is not a command"},
		{`status -adress x`, false, "foreshape status has no flag -adress"},
		{`sim run [-scenaro NAME]`, false, "foreshape sim run has no flag -scenaro"},
	} {
		got := strings.Join(checkCommand(words(tc.line), tc.mention), "; ")
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestDocumentedMakeTargetsExist: every `make TARGET` the docs name is a
// target of the Makefile with a description, and `make help` lists it.
func TestDocumentedMakeTargetsExist(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z0-9_-]+):[^\n]*## `).FindAllStringSubmatch(string(mk), -1) {
		described[m[1]] = true
	}
	named := map[string]string{}
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile("`make ([a-z0-9-]+)").FindAllStringSubmatch(string(b), -1) {
			named[m[1]] = f
		}
	}
	if len(named) < 5 {
		t.Fatalf("found only %v: the scan is broken", named)
	}
	for target, f := range named {
		if !described[target] {
			t.Errorf("%s names make %s, which the Makefile does not describe", f, target)
		}
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	out, err := exec.Command("make", "--no-print-directory", "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for target := range described {
		if !listed[target] {
			t.Errorf("make help does not list %s:\n%s", target, out)
		}
	}
}

// TestDocumentedTestsExist: every test, benchmark or fuzz test the docs
// name as evidence (`TestReady`, BenchmarkPlan) is one the repository has,
// so a renamed or removed test cannot leave a claim resting on nothing.
func TestDocumentedTestsExist(t *testing.T) {
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	ref := regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)`)
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range ref.FindAllStringSubmatch(line, -1) {
				named++
				if name := strings.TrimRight(m[1], "_"); !defined[name] {
					t.Errorf("%s:%d names %s, which no _test.go file defines", f, i+1, name)
				}
			}
		}
	}
	if named < 20 || len(defined) < 100 {
		t.Fatalf("%d tests named in the docs, %d defined: the scan is broken", named, len(defined))
	}
}

// hclBlocks are the ```hcl code blocks of a document, with their lines.
func hclBlocks(t *testing.T, path string) (blocks []string, lines []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```hcl":
			in, cur = true, nil
			lines = append(lines, i+2)
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// TestDocumentedHCLIsValid: the HCL the docs show is what foreshape
// accepts: the scale block of docs/targets.md inside a policy, the agent
// configuration fragments of docs/clustering.md, and the scenario of
// sim/README.md.
func TestDocumentedHCLIsValid(t *testing.T) {
	blocks, lines := hclBlocks(t, "docs/targets.md")
	if len(blocks) == 0 {
		t.Fatal("docs/targets.md shows no HCL: the scan is broken")
	}
	for i, b := range blocks {
		src := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n" + b + "}\n"
		if _, diags := policies.Parse("docs/targets.md", []byte(src)); diags.HasErrors() {
			t.Errorf("docs/targets.md:%d: %s", lines[i], diags.Error())
		}
	}
	blocks, lines = hclBlocks(t, "docs/clustering.md")
	if len(blocks) == 0 {
		t.Fatal("docs/clustering.md shows no HCL: the scan is broken")
	}
	for i, b := range blocks {
		path := filepath.Join(t.TempDir(), "agent.hcl")
		if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, diags := config.Load(path); diags.HasErrors() {
			t.Errorf("docs/clustering.md:%d: %s", lines[i], diags.Error())
		}
	}
	blocks, lines = hclBlocks(t, "sim/README.md")
	if len(blocks) != 1 {
		t.Fatalf("sim/README.md shows %d HCL blocks, want its one scenario", len(blocks))
	}
	if _, err := sim.ParseScenario([]byte(blocks[0]), "sim/README.md"); err != nil {
		t.Errorf("sim/README.md:%d: %v", lines[0], err)
	}
}

// TestEveryCommandExplainsItself: as the README says, every command and
// command group answers -help (exit 0) with its usage and an example.
func TestEveryCommandExplainsItself(t *testing.T) {
	var walk func(path []string) int
	walk = func(path []string) int {
		code, text := help(path...)
		name := strings.TrimSpace("foreshape " + strings.Join(path, " "))
		if code != command.ExitOK {
			t.Errorf("%s -help exits %d", name, code)
		}
		if !strings.HasPrefix(text, "Usage: "+name) {
			t.Errorf("%s -help does not start with its usage:\n%.200s", name, text)
		}
		if len(path) > 0 && !strings.Contains(text, "\nExample:\n") && !strings.Contains(text, "\nExamples:\n") {
			t.Errorf("%s -help shows no example:\n%s", name, text)
		}
		n := 1
		for _, s := range subcommands(text) {
			n += walk(append(slices.Clone(path), s))
		}
		return n
	}
	if n := walk(nil); n < 30 {
		t.Errorf("walked %d commands: the walk is broken", n)
	}
}

// TestMakeBuildStampsTheRevision: in a git checkout, make build (and so
// make dev) stamps `git describe` into command.revision, which `foreshape
// version` prints (command's TestVersionOf); outside one it stamps
// nothing, and version says the revision is unknown.
func TestMakeBuildStampsTheRevision(t *testing.T) {
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on this machine", tool)
		}
	}
	if _, err := os.Stat(".git"); err != nil {
		t.Skip("not a git checkout")
	}
	const stamp = "-X github.com/foreshape/foreshape/command.revision="
	desc, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("make", "--no-print-directory", "-n", "build").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := stamp + strings.TrimSpace(string(desc)); !strings.Contains(string(out), want) {
		t.Errorf("make -n build:\n%s\nwant it to stamp %q", out, want)
	}
	// make dev (README) builds bin/foreshape so, and runs it: the agent's
	// own exit code (0 on Ctrl-C, TestDevAgentForecasts), not go run's.
	dev, err := exec.Command("make", "--no-print-directory", "-n", "dev").Output()
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(dev)), "\n"); len(lines) != 2 || lines[0] != strings.TrimSpace(string(out)) ||
		lines[1] != "bin/foreshape agent -dev" {
		t.Errorf("make -n dev:\n%s\nwant make build's command, then bin/foreshape agent -dev", dev)
	}
	dir := t.TempDir()
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("make", "--no-print-directory", "-n", "-C", dir, "build").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), stamp) {
		t.Errorf("make -n build outside a git checkout stamps a revision:\n%s", out)
	}
}

// TestDocumentedServerBoundsAreValidated: the bounds docs/clustering.md
// gives in the comments of its server block ("…; LOW–HIGH") are the ones
// config validate prints when a setting is outside them, written the same
// way, and HIGH itself is accepted.
func TestDocumentedServerBoundsAreValidated(t *testing.T) {
	bound := regexp.MustCompile(`^\s*(raft_\w+)\s*=\s*\S+\s*#.*; ("?[^";]+"?)–("?[^";]+"?)$`)
	// below is a value under each setting's lowest bound.
	below := map[string]string{"raft_snapshot_threshold": "0", "raft_snapshot_interval": `"500ms"`, "raft_trailing_logs": "0"}
	blocks, _ := hclBlocks(t, "docs/clustering.md")
	checked := 0
	for _, b := range blocks {
		for _, line := range strings.Split(b, "\n") {
			m := bound.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name, low, high := m[1], m[2], m[3]
			value, ok := below[name]
			if !ok {
				t.Errorf("docs/clustering.md gives bounds for %s, which this test does not know", name)
				continue
			}
			checked++
			load := func(v string) error {
				path := filepath.Join(t.TempDir(), "agent.hcl")
				if err := os.WriteFile(path, []byte("server {\n  "+name+" = "+v+"\n}\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if _, diags := config.Load(path); diags.HasErrors() {
					return diags
				}
				return nil
			}
			if err := load(high); err != nil {
				t.Errorf("%s = %s (docs/clustering.md's highest): %v", name, high, err)
			}
			want := "outside " + strings.Trim(low, `"`) + "-" + strings.Trim(high, `"`)
			if err := load(value); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %s: %v; want the bounds as docs/clustering.md gives them (%q)", name, value, err, want)
			}
		}
	}
	if checked != len(below) {
		t.Fatalf("checked %d of docs/clustering.md's %d server bounds: the scan is broken", checked, len(below))
	}
}

// TestExampleSaysWhatAReloadApplies: example.hcl, the configuration's
// reference, says what SIGHUP applies at once, naming each of the live
// settings (config.LiveSettings), and that the others wait for a restart;
// so does agent -help.
func TestExampleSaysWhatAReloadApplies(t *testing.T) {
	src, err := os.ReadFile("example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	_, agentHelp := help("agent")
	for name, text := range map[string]string{"example.hcl": string(src), "agent -help": agentHelp} {
		i := strings.Index(text, "SIGHUP")
		if i < 0 {
			t.Errorf("%s does not say what SIGHUP reloads", name)
			continue
		}
		para, _, _ := strings.Cut(text[i:], "\n\n")
		para = strings.Join(strings.Fields(strings.ReplaceAll(para, "#", "")), " ")
		for _, s := range config.LiveSettings {
			if !regexp.MustCompile(`\b` + s + `\b`).MatchString(para) {
				t.Errorf("%s's SIGHUP paragraph does not name %s, which a reload applies: %q", name, s, para)
			}
		}
		if !strings.Contains(para, "next start") {
			t.Errorf("%s's SIGHUP paragraph does not say the other settings wait for the next start: %q", name, para)
		}
	}
}
