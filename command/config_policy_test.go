package command

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/collect"
	"github.com/hashicorp/hcl/v2"
)

func TestExamplesValidate(t *testing.T) {
	examples, err := filepath.Glob("../policies/examples/*.hcl")
	if err != nil || len(examples) < 3 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, tc := range [][]string{
		append([]string{"policy", "validate"}, examples...),
		{"policy", "validate", "../policies/examples"},
		// config show reads no file example.hcl names (/etc/foreshape/…,
		// absent here): it checks the settings only, as its -help says.
		{"config", "show", "../example.hcl"},
		{"config", "show", "-format", "json", "../example.hcl"},
		{"policy", "fmt", "-check", "../policies/examples", "../example.hcl"},
		// The dev agent's embedded policies.
		{"policy", "validate", "dev-policies.hcl"},
		{"policy", "fmt", "-check", "dev-policies.hcl"},
	} {
		code, stdout, stderr := run(t, tc...)
		if code != ExitOK {
			t.Errorf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", tc, code, stdout, stderr)
		}
		if stderr != "" {
			t.Errorf("%q: unexpected stderr:\n%s", tc, stderr)
		}
	}
	for _, e := range examples {
		if _, stdout, _ := run(t, "policy", "validate", e); !strings.HasPrefix(stdout, "1 policy valid: ") {
			t.Errorf("%s: stdout %q", e, stdout)
		}
	}
	if _, stdout, _ := run(t, "policy", "validate", "dev-policies.hcl"); !strings.HasPrefix(stdout, "4 policies valid: ") {
		t.Errorf("dev-policies.hcl: stdout %q", stdout)
	}
	// The dev agent's defaults: an empty configuration over them is valid.
	empty := filepath.Join(t.TempDir(), "empty.hcl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "config", "validate", "-dev", empty); code != ExitOK {
		t.Errorf("config validate -dev of an empty file: exit %d\n%s%s", code, stdout, stderr)
	}
	// example.hcl names files under /etc/foreshape: where they are (here,
	// moved into a temporary directory), config validate accepts it.
	path := newExample(t).path
	if code, stdout, stderr := run(t, "config", "validate", path); code != ExitOK || stderr != "" {
		t.Errorf("config validate of the example with its files: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestExampleNeedsItsFiles: on a machine without example.hcl's files
// (the README's first run), config validate refuses it as the agent would,
// naming every file the agent reads at start.
func TestExampleNeedsItsFiles(t *testing.T) {
	if _, err := os.Stat("/etc/foreshape"); err == nil {
		t.Skip("/etc/foreshape exists on this machine")
	}
	code, stdout, stderr := run(t, "config", "validate", "../example.hcl")
	if code != ExitInvalid || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	for _, field := range []string{"nomad.ca_file", "nomad.cert_file", "nomad.key_file", "tls.ca_file", "tls.cert_file",
		"tls.key_file", "acl.token_file", "policies.dir"} {
		if !strings.Contains(stderr, "error: Cannot read "+field+"\n") {
			t.Errorf("config validate does not name %s:\n%s", field, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"policy", "validate"},
		{"policy", "validate", "-nope", "x.hcl"},
		{"policy", "fmt", "-check=maybe"},
		{"config", "validate"},
		{"config", "validate", "a.hcl", "b.hcl"},
		{"config", "validate", "-dev-sim=false", "../example.hcl"}, // as agent -config: -dev-sim needs -dev
		{"config", "show"},
		{"config", "show", "-format", "yaml", "../example.hcl"},
		{"agent"},
		{"agent", "-config", "../example.hcl", "extra"},
		{"agent", "-bogus"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
		if !strings.Contains(stderr, "-help") {
			t.Errorf("%q: the usage error does not point at -help:\n%s", args, stderr)
		}
	}
}

func TestHelpHasExample(t *testing.T) {
	for _, name := range []string{"config validate", "config show", "policy validate", "policy fmt", "agent"} {
		args := append(strings.Fields(name), "-help")
		code, stdout, stderr := run(t, args...)
		out := stdout + stderr
		if code != ExitOK {
			t.Errorf("%s -help: exit %d", name, code)
		}
		if !strings.Contains(out, "Usage: foreshape "+name) || !strings.Contains(out, "Example:") {
			t.Errorf("%s -help lacks usage or an example:\n%s", name, out)
		}
	}
}

func TestConfigShowRedactsSecrets(t *testing.T) {
	const fileTok, envTok = "file-token-0a1b2c", "env-token-3d4e5f"
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte("nomad {\n  token = \""+fileTok+"\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", envTok)
	for _, format := range []string{"hcl", "json"} {
		code, stdout, stderr := run(t, "config", "show", "-env", "-format", format, path)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if strings.Contains(stdout+stderr, fileTok) || strings.Contains(stdout+stderr, envTok) {
			t.Errorf("config show -format %s reveals a token:\n%s", format, stdout)
		}
		redacted := "<redacted>"
		if format == "hcl" {
			redacted = "# token = <redacted> (set; not shown)"
		}
		if strings.Count(stdout, redacted) != 2 {
			t.Errorf("config show -format %s should show both tokens as %s:\n%s", format, redacted, stdout)
		}
		// What -help says prints empty when not set does.
		for _, name := range []string{"name", "advertise_addr", "region", "namespace", "iops_query"} {
			re := regexp.MustCompile(`(?m)^\s*# ` + name + ` = "" \(default\)$`)
			if format == "json" {
				re = regexp.MustCompile(`"` + name + `": ""`)
			}
			if !re.MatchString(stdout) {
				t.Errorf("config show -format %s: %s is not empty:\n%s", format, name, stdout)
			}
		}
	}
}

func TestPolicyFmt(t *testing.T) {
	dir := t.TempDir()
	messy := "shaping \"web\" {\nlocality {\ndatacenter=\"dc1\"\n}\n}\n"
	tidy := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n}\n"
	a, b := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl")
	broken := filepath.Join(t.TempDir(), "broken.hcl")
	for p, src := range map[string]string{a: messy, b: tidy, broken: "shaping {\n"} {
		if err := os.WriteFile(p, []byte(src), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	code, stdout, _ := run(t, "policy", "fmt", "-check", dir)
	if code != ExitInvalid || stdout != a+"\n" || read(a) != messy {
		t.Errorf("-check: exit %d, listed %q, file changed %v", code, stdout, read(a) != messy)
	}
	code, stdout, _ = run(t, "policy", "fmt", "-write=false", a)
	if code != ExitOK || stdout != tidy || read(a) != messy {
		t.Errorf("-write=false: exit %d, printed %q", code, stdout)
	}
	code, stdout, _ = run(t, "policy", "fmt", dir)
	if code != ExitOK || stdout != a+"\n" || read(a) != tidy || read(b) != tidy {
		t.Errorf("fmt: exit %d, listed %q, a = %q", code, stdout, read(a))
	}
	if fi, err := os.Stat(a); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("fmt changed the file mode: %v %v", fi.Mode(), err)
	}
	code, _, _ = run(t, "policy", "fmt", "-check", dir)
	if code != ExitOK {
		t.Errorf("-check after fmt: exit %d", code)
	}
	code, _, stderr := run(t, "policy", "fmt", broken)
	if code != ExitInvalid || !strings.Contains(stderr, broken+":") || read(broken) != "shaping {\n" {
		t.Errorf("syntax error: exit %d, stderr %q", code, stderr)
	}
	code, _, _ = run(t, "policy", "fmt", filepath.Join(dir, "missing.hcl"))
	if code != ExitInvalid {
		t.Errorf("missing file: exit %d", code)
	}
	// A directory without HCL files (the wrong one, most likely) is said
	// to hold none, as policy validate says, rather than passed in silence.
	empty := t.TempDir()
	code, _, stderr = run(t, "policy", "fmt", "-check", empty)
	if code != ExitOK || !strings.Contains(stderr, empty+" holds no *.hcl file") {
		t.Errorf("a directory without HCL files: exit %d, stderr %q", code, stderr)
	}
}

func TestPolicyValidateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	one := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n}\n"
	for _, n := range []string{"a.hcl", "b.hcl"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(one), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := run(t, "policy", "validate", dir)
	if code != ExitInvalid || !strings.Contains(stderr, filepath.Join(dir, "b.hcl")+":1,") || !strings.Contains(stderr, filepath.Join(dir, "a.hcl")+":1,") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestLoadAgent covers what `foreshape agent` starts from: the merged
// configuration and the policies of its policies.dir.
func TestLoadAgent(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o700); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../policies/examples/batch-pool.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "batch.hcl"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noEnv := func(string) string { return "" }
	// batch-pool's queries need a Prometheus.
	write("data_dir = \"" + dir + "\"\npolicies {\n  dir = \"" + pdir + "\"\n}\nprometheus {\n  address = \"http://127.0.0.1:9090\"\n}\n")

	s := loadAgent(cfg, false, "", false, "127.0.0.1:9999", noEnv, nil)
	if s.diags.HasErrors() {
		t.Fatal(s.diags.Error())
	}
	if len(s.policies) != 1 || s.policies[0].Name != "batch-pool" || s.cfg.HTTP.Address != "127.0.0.1:9999" {
		t.Errorf("policies %d, http %q", len(s.policies), s.cfg.HTTP.Address)
	}

	// An invalid policy stops the agent, with a located diagnostic.
	bad := filepath.Join(pdir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("shaping \"x\" {\n  locality {\n    datacenter = 1\n  }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = loadAgent(cfg, false, "", false, "", noEnv, nil)
	if !s.diags.HasErrors() || s.diags[0].Subject == nil || s.diags[0].Subject.Filename != bad || s.files[bad] == nil {
		t.Errorf("invalid policy: %v", s.diags)
	}

	// A missing policies directory is an error, a warning in dev mode.
	write("data_dir = \"" + dir + "\"\npolicies {\n  dir = \"" + filepath.Join(dir, "none") + "\"\n}\n")
	if s = loadAgent(cfg, false, "", false, "", noEnv, nil); !s.diags.HasErrors() || !strings.Contains(s.diags.Error(), "policies.dir") {
		t.Errorf("missing policies dir: %v", s.diags)
	}
	// (A dev agent keeps no data_dir: it refuses one.)
	write("policies {\n  dir = \"" + filepath.Join(dir, "none") + "\"\n}\n")
	if s = loadAgent(cfg, true, "", false, "", noEnv, nil); s.diags.HasErrors() || len(s.diags) != 1 || s.diags[0].Severity != hcl.DiagWarning {
		t.Errorf("dev mode should only warn: %v", s.diags)
	}

	// An invalid configuration is reported before policies are read.
	write("log_level = \"loud\"\n")
	if s = loadAgent(cfg, false, "", false, "", noEnv, nil); !s.diags.HasErrors() || s.diags[0].Subject == nil || s.diags[0].Subject.Filename != cfg {
		t.Errorf("invalid config: %v", s.diags)
	}
}

func TestLoadAgentConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte("http {\n  address = \"127.0.0.1:1111\"\n}\nnomad {\n  address = \"http://file:4646\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NOMAD_ADDR": "http://env:4646"}
	c, s := loadAgentConfig(cfg, true, "127.0.0.1:2222", func(k string) string { return env[k] })
	if s.diags.HasErrors() {
		t.Fatal(s.diags.Error())
	}
	if c.HTTP.Address != "127.0.0.1:2222" || c.Nomad.Address != "http://env:4646" || !c.DevMode || c.LogLevel != "debug" {
		t.Errorf("precedence wrong: http %q nomad %q dev %v log %q", c.HTTP.Address, c.Nomad.Address, c.DevMode, c.LogLevel)
	}
}

func TestPolicyValidateWarningsPass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short-history.hcl")
	src := "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n  forecast {\n    step        = \"5m\"\n    history     = \"7d\"\n    seasonality = [\"7d\"]\n  }\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "policy", "validate", path)
	if code != ExitOK || stdout != "1 policy valid: web\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, path+":8,") || !strings.Contains(stderr, "warning: Questionable forecast.seasonality[0]") {
		t.Errorf("the warning is not located or named:\n%s", stderr)
	}
}

// TestPolicyValidateWarnsOfDrainsAtOnce: two drain schedules of one
// policy that take the nodes of dc2/*/batch in windows that overlap pass
// policy validate, warned of at the later one's locality, naming both.
func TestPolicyValidateWarnsOfDrainsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drains-at-once.hcl")
	src := `shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "maintenance" {
    cron       = "0 8 * * *"
    duration   = "2h"
    action     = "drain"
    localities = ["dc2"]
  }

  schedule "batch" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2/*/batch"]
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "policy", "validate", path)
	if code != ExitOK || stdout != "1 policy valid: web\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{path + ":17,19-32: warning: Drains of shared nodes at once",
		`schedule.batch.localities[0]: schedules "batch" and "maintenance" (` + path + `:6,3-25) both drain the nodes of dc2/*/batch`,
		`"maintenance"'s of Sat 2000-01-01 08:00–10:00 UTC and "batch"'s of 09:00–10:00 UTC`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the warning does not say %q:\n%s", want, stderr)
		}
	}
}

func TestPolicyValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.hcl")
	code, _, stderr := run(t, "policy", "validate", path)
	if code != ExitInvalid || !strings.Contains(stderr, path) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = run(t, "config", "validate", path)
	if code != ExitInvalid || !strings.Contains(stderr, path) {
		t.Errorf("config: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestPolicyValidateSeriesBudget: policy validate refuses policies that
// need more series than the agent's series store holds, on its own and
// with -config, at the policy that passes the bound. Apart from
// TestPolicyValidateAgainstConfig, which sets the environment, it runs
// beside other tests: the policies take seconds under -race to load.
func TestPolicyValidateSeriesBudget(t *testing.T) {
	t.Parallel()
	generateInputs(t)
	code, _, stderr := runValidate(t, "policy", "validate", generatedDir)
	if code != ExitInvalid || !strings.Contains(stderr, "many.hcl:2,1-15: error: Too many series") || !strings.Contains(stderr, `They pass it at policy "many".`) {
		t.Errorf("25,001 localities: exit %d\n%s; want the error at the policy that passes the bound", code, stderr)
	}
	if want := fmt.Sprintf("(%s;", humanize(collect.DefaultMaxSeries)); !strings.Contains((&PolicyValidateCommand{}).Help(), want) {
		t.Errorf("-help does not give the series store's bound as %q", want)
	}
	withProm := filepath.Join(t.TempDir(), "agent.hcl")
	copyFile(t, "", withProm, "prometheus {\n  address = \"http://127.0.0.1:9090\"\n}\n")
	// The files given are the policies: the message names no policies.dir.
	if code, _, stderr := run(t, "policy", "validate", "-config", withProm, generatedDir); code != ExitInvalid ||
		!strings.Contains(stderr, "error: Too many series") || strings.Contains(stderr, "policies.dir") {
		t.Errorf("25,001 localities with -config: exit %d\n%s", code, stderr)
	}
}

// TestPolicyValidateAgainstConfig: policy validate refuses what the agent
// refuses under any configuration on its own, and with -config what that
// configuration decides (TestPolicyValidateSeriesBudget, the series the
// policies need).
func TestPolicyValidateAgainstConfig(t *testing.T) {
	dir := t.TempDir()
	queue := filepath.Join(dir, "queue.hcl")
	copyFile(t, "testdata/golden/policy/queries-without-prometheus.hcl", queue, "")
	if code, stdout, stderr := run(t, "policy", "validate", queue); code != ExitOK || stdout != "1 policy valid: queue\n" {
		t.Errorf("queries without -config: exit %d\n%s%s", code, stdout, stderr)
	}
	withProm := filepath.Join(dir, "agent.hcl")
	copyFile(t, "", withProm, "prometheus {\n  address = \"http://127.0.0.1:9090\"\n}\n")
	if code, stdout, stderr := run(t, "policy", "validate", "-config", withProm, queue); code != ExitOK || stdout != "1 policy valid: queue\n" {
		t.Errorf("queries with a configuration that has Prometheus: exit %d\n%s%s", code, stdout, stderr)
	}
	bad := filepath.Join(dir, "bad.hcl")
	copyFile(t, "", bad, "log_level = \"loud\"\n")
	if code, stdout, stderr := run(t, "policy", "validate", "-config", bad, queue); code != ExitInvalid || stdout != "" ||
		!strings.Contains(stderr, bad+":1,") || !strings.Contains(stderr, "log_level") {
		t.Errorf("an invalid -config: exit %d\n%s%s", code, stdout, stderr)
	}
	// -env applies the environment to -config's configuration as the agent
	// does: nomad.ca_file from the file with an https:// NOMAD_ADDR.
	t.Setenv("NOMAD_ADDR", "https://127.0.0.1:4646")
	tlsCfg := filepath.Join(dir, "tls.hcl")
	copyFile(t, "", tlsCfg, "prometheus {\n  address = \"http://127.0.0.1:9090\"\n}\nnomad {\n  ca_file = \"/etc/nomad.d/ca.pem\"\n}\n")
	if code, _, stderr := run(t, "policy", "validate", "-config", tlsCfg, "../policies/examples"); code != ExitInvalid || !strings.Contains(stderr, "nomad.ca_file") {
		t.Errorf("nomad.ca_file over the file's http:// address, without -env: exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := run(t, "policy", "validate", "-env", "-config", tlsCfg, "../policies/examples"); code != ExitOK {
		t.Errorf("nomad.ca_file with NOMAD_ADDR https:// and -env: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "policy", "validate", "-env", queue); code != ExitUsage || !strings.Contains(stderr, "give -config too") {
		t.Errorf("-env without -config: exit %d\n%s", code, stderr)
	}
}

// humanize writes n with thousands separators: 100000 → "100,000".
func humanize(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestConfigValidateNotesUnusedEnvironment: with -env, what the
// environment sets that the agent would not use is accepted, as the
// agent accepts it, with the note the agent logs; a file setting the
// same is refused (golden nomad-tls-over-http, consul-address-unused).
func TestConfigValidateNotesUnusedEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.hcl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOMAD_CACERT", filepath.Join(t.TempDir(), "absent-ca.pem"))
	t.Setenv("CONSUL_HTTP_TOKEN", "consul-secret-7")
	t.Setenv("NOMAD_HTTP_AUTH", "alice:nomad-secret-8")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-dev", "-dev-sim=false"}, []string{
			`note: nomad.ca_file, set by environment variable NOMAD_CACERT, is not used: nomad.address "http://127.0.0.1:4646" is not an https:// URL`,
			"note: consul.token, set by environment variable CONSUL_HTTP_TOKEN, is not used: consul.enabled is false",
			"note: environment variable NOMAD_HTTP_AUTH is ignored: foreshape has no setting for HTTP basic auth to Nomad and sends none",
		}},
		{[]string{"-dev"}, []string{
			"note: nomad.ca_file, set by environment variable NOMAD_CACERT, is not used: -dev runs against its embedded simulated Nomad cluster",
		}},
	} {
		code, stdout, stderr := run(t, append(append([]string{"config", "validate", "-env"}, tc.args...), path)...)
		if code != ExitOK || !strings.Contains(stdout, "the configuration is valid") {
			t.Fatalf("%v: exit %d:\n%s%s", tc.args, code, stdout, stderr)
		}
		for _, want := range tc.want {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, want, stderr)
			}
		}
		if strings.Contains(stderr, "consul-secret-7") || strings.Contains(stderr, "nomad-secret-8") {
			t.Errorf("the note reveals the token:\n%s", stderr)
		}
	}
	if code, _, stderr := run(t, "config", "validate", "-dev", path); code != ExitOK || strings.Contains(stderr, "note:") {
		t.Errorf("without -env: exit %d, %q; want no note", code, stderr)
	}
	// An invalid value is refused even where unused, as the agent refuses
	// it (-help says so).
	t.Setenv("CONSUL_HTTP_ADDR", "consul::8500")
	if code, _, stderr := run(t, "config", "validate", "-env", "-dev", path); code != ExitInvalid ||
		!strings.Contains(stderr, "Invalid consul.address from environment variable CONSUL_HTTP_ADDR") {
		t.Errorf("an invalid, unused CONSUL_HTTP_ADDR: exit %d, %q; want it refused", code, stderr)
	}
}

// TestDevAndReplayRefuseNomadSettings: a dev agent on its embedded
// simulated cluster and a replay talk to no Nomad of the configuration's,
// so a file's nomad settings are refused, naming how to use them; -dev
// with -dev-sim=false uses them.
func TestDevAndReplayRefuseNomadSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(path, []byte("nomad {\n  address = \"http://10.0.0.5:4646\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		dev    bool
		replay string // the recording's directory
		devSim bool
		want   string // "" when accepted
	}{
		{"dev", true, "", true, "-dev runs against its embedded simulated Nomad cluster, so no nomad setting is used. Add -dev-sim=false"},
		{"dev against this Nomad", true, "", false, ""},
		{"replay", true, t.TempDir(), false, "a replay (-replay) reads recorded series, not Nomad, so no nomad setting is used. Run the agent without -replay"},
		{"server", false, "", false, ""},
	} {
		s := loadAgent(path, tc.dev, tc.replay, tc.devSim, "", noEnv, nil)
		var errs []string
		for _, d := range s.diags {
			if d.Severity == hcl.DiagError && d.Summary != "Cannot read policies.dir" && d.Summary != "Invalid data_dir" {
				errs = append(errs, d.Summary+": "+d.Detail)
				if d.Subject == nil || d.Subject.Start.Line != 2 {
					t.Errorf("%s: %q not at the file's line 2", tc.name, d.Summary)
				}
			}
		}
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: refused: %q", tc.name, errs)
		case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], "Invalid nomad.address") || !strings.Contains(errs[0], tc.want)):
			t.Errorf("%s: %q; want nomad.address refused: %q", tc.name, errs, tc.want)
		}
	}
	// A replay acts on nothing: forecast_only would not change anything.
	if err := os.WriteFile(path, []byte("forecast_only = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := loadAgent(path, true, t.TempDir(), false, "", noEnv, nil)
	if !s.diags.HasErrors() || !strings.Contains(s.diags.Error(), "forecast_only is set but a replay (-replay) reads recorded series and acts on nothing") {
		t.Errorf("replay with forecast_only: %v", s.diags)
	}
	if s := loadAgent(path, true, "", true, "", noEnv, nil); s.diags.HasErrors() {
		t.Errorf("dev with forecast_only: %v", s.diags)
	}
}

// A refused -http-addr value is a usage error (exit 2) in the agent and in
// config validate, and says it came from the flag; the same value from a
// file is an invalid configuration (exit 1).
func TestBadHTTPAddrFlagIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte("data_dir = \""+filepath.Join(dir, "data")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("http {\n  address = \"bogus\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"agent", "-dev", "-http-addr", "bogus"},
		{"agent", "-config", good, "-http-addr", "127.0.0.1:99999"},
		{"config", "validate", "-http-addr", "256.1.1.1:80", good},
	} {
		code, _, errOut := run(t, args...)
		if code != ExitUsage || !strings.Contains(errOut, "from flag -http-addr") {
			t.Errorf("%v: exit %d, %q; want %d naming the flag", args, code, errOut, ExitUsage)
		}
	}
	if code, _, errOut := run(t, "config", "validate", bad); code != ExitInvalid || !strings.Contains(errOut, "bad.hcl:2") {
		t.Errorf("config validate of a file with a bad http.address: exit %d, %q; want %d naming the file and line", code, errOut, ExitInvalid)
	}
}

// config show's -help example is what it prints.
func TestConfigShowHelpExample(t *testing.T) {
	t.Setenv("NOMAD_TOKEN", "abc")
	code, stdout, stderr := run(t, "config", "show", "-env", "../example.hcl")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	help := (&ConfigShowCommand{}).Help()
	i := strings.Index(help, "  nomad {")
	if i < 0 {
		t.Fatal("the help's example shows no nomad block")
	}
	example := help[i : strings.Index(help[i:], "  ...")+i]
	var want []string
	for line := range strings.Lines(example) {
		want = append(want, strings.TrimPrefix(line, "  "))
	}
	if !strings.Contains(stdout, strings.Join(want, "")) {
		t.Errorf("config show prints no block as the help's example:\n%s\nwant:\n%s", stdout, strings.Join(want, ""))
	}
	// The help's comments, from a file that sets neither.
	path := filepath.Join(t.TempDir(), "a.hcl")
	if err := os.WriteFile(path, []byte("data_dir = \"/var/lib/fs\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOMAD_TOKEN", "")
	if code, stdout, stderr = run(t, "config", "show", path); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, c := range []string{"# raft_port = 7576 (default)", "# token is not set"} {
		if !strings.Contains(help, "'"+c) || !strings.Contains(stdout, c) {
			t.Errorf("%q: in the help %v, printed %v", c, strings.Contains(help, "'"+c), strings.Contains(stdout, c))
		}
	}
	// What -env took from the environment is a comment naming the
	// variable, so the output loads back where such a setting in a file
	// is refused (CONSUL_HTTP_ADDR without Consul).
	t.Setenv("NOMAD_ADDR", "https://nomad:4646")
	t.Setenv("CONSUL_HTTP_ADDR", "10.1.1.1:8500")
	if code, stdout, stderr = run(t, "config", "show", "-env", path); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantEnv := `# address = "https://nomad:4646" (from environment variable NOMAD_ADDR)`
	if !strings.Contains(stdout, wantEnv) || !strings.Contains(strings.Join(strings.Fields(help), " "), strings.Join(strings.Fields(strings.TrimPrefix(wantEnv, "# ")), " ")) {
		t.Errorf("config show -env: want %q in the output and the help:\n%s", wantEnv, stdout)
	}
	shown := filepath.Join(t.TempDir(), "shown.hcl")
	if err := os.WriteFile(shown, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOMAD_ADDR", "")
	t.Setenv("CONSUL_HTTP_ADDR", "")
	if code, _, stderr = run(t, "config", "show", shown); code != ExitOK {
		t.Errorf("config show -env's output does not load back: exit %d\n%s", code, stderr)
	}
}

// A credential on a line the parser cannot read (set twice, an
// unterminated string, a misspelt name) is not printed in the snippet of
// config validate's (and the agent's) diagnostics.
func TestParseErrorsHideCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"twice.hcl":        "consul {\n  token = \"old-S3CRET\"\n  token = \"new-S3CRET\"\n}\n",
		"unterminated.hcl": "nomad {\n  token = \"S3CRET-T0KEN\n}\n",
		"misspelt.hcl":     "nomad {\n  tokn = \"S3CRET\"\n}\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"config", "validate", path}, {"agent", "-config", path}} {
			code, out, errOut := run(t, args...)
			if code == ExitOK || strings.Contains(out+errOut, "S3CRET") || !strings.Contains(errOut, name+":") {
				t.Errorf("%v: exit %d, output shows the token or no locator:\n%s%s", args, code, out, errOut)
			}
		}
	}
}

// config show -dev refuses what agent -dev refuses: nomad settings, which
// its embedded simulated cluster would leave unused (it printed them);
// -dev-sim=false takes them, as the agent does.
func TestConfigShowDevRefusesNomadSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.hcl")
	if err := os.WriteFile(path, []byte("nomad {\n  address = \"http://10.0.0.1:4646\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"config", "show", "-dev", path}, ExitInvalid},
		{[]string{"agent", "-dev", "-config", path}, ExitInvalid},
		{[]string{"config", "show", "-dev", "-dev-sim=false", path}, ExitOK},
		{[]string{"config", "show", "-dev-sim=false", path}, ExitUsage},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || (code == ExitInvalid && !strings.Contains(errOut, "Invalid nomad.address")) {
			t.Errorf("%v: exit %d, %s; want %d", tc.args, code, errOut, tc.code)
		}
	}
}

// TestUnreadablePolicyFileIsThePolicies: a policy file the agent cannot
// read (here a link whose target is gone, as a half-synced directory
// leaves) is refused at its file, so a reload refused for it logs that
// the policies are invalid, not the configuration.
func TestUnreadablePolicyFileIsThePolicies(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	copyFile(t, "../policies/examples/web-daily-peak.hcl", filepath.Join(pdir, "web.hcl"), "")
	if err := os.Symlink("gone.hcl", filepath.Join(pdir, "batch.hcl")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	copyFile(t, "", cfg, "data_dir = \""+dir+"\"\npolicies {\n  dir = \""+pdir+"\"\n}\n")
	s := loadAgent(cfg, false, "", false, "", func(string) string { return "" }, nil)
	if !s.diags.HasErrors() {
		t.Fatal("an unreadable policy file is not an error")
	}
	if got := invalidWhat(s); got != "policies are" {
		t.Errorf("a reload refused for an unreadable policy file says the %s invalid; want the policies (%v)", got, s.diags)
	}
	code, _, stderr := run(t, "policy", "validate", pdir)
	if want := filepath.Join(pdir, "batch.hcl") + ":1,1-1: error: Cannot read policy file"; code != ExitInvalid || !strings.Contains(stderr, want) {
		t.Errorf("policy validate: exit %d\n%s\nwant %q", code, stderr, want)
	}
}

// TestPolicyValidateSaysWhatTheAgentSkips: a file named to policy
// validate whose name the agent skips in policies.dir (web.hcl.disabled,
// .web.hcl) is checked, with a warning that the agent does not read it
// there; in a directory both skip it.
func TestPolicyValidateSaysWhatTheAgentSkips(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"web.hcl.disabled", ".web.hcl"} {
		path := filepath.Join(dir, name)
		copyFile(t, "../policies/examples/web-daily-peak.hcl", path, "")
		code, stdout, stderr := run(t, "policy", "validate", path)
		if want := path + ":1,1-1: warning: Not read from policies.dir"; code != ExitOK || stdout != "1 policy valid: web-daily-peak\n" || !strings.Contains(stderr, want) {
			t.Errorf("policy validate %s: exit %d\n%s%s\nwant it valid, and %q", name, code, stdout, stderr, want)
		}
	}
	code, stdout, stderr := run(t, "policy", "validate", dir)
	if code != ExitOK || stdout != "no policies found\n" || !strings.Contains(stderr, "holds no *.hcl file") {
		t.Errorf("policy validate DIR: exit %d\n%s%s\nwant no policies, and a warning that it holds no *.hcl file", code, stdout, stderr)
	}
	web := filepath.Join(dir, "web.hcl")
	copyFile(t, "../policies/examples/web-daily-peak.hcl", web, "")
	if code, _, stderr := run(t, "policy", "validate", web); code != ExitOK || strings.Contains(stderr, "Not read from policies.dir") {
		t.Errorf("policy validate web.hcl: exit %d\n%s", code, stderr)
	}
}
