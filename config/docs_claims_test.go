package config_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/foreshape/foreshape/config"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"
)

// settingNames are the dotted names of every setting of config.Config
// ("server.raft_port"), from its json tags: dev_mode is a flag, and the
// fields without a tag are not settings.
func settingNames() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" || name == "dev_mode" {
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	return out
}

// exampleSetting is one setting example.hcl shows: set, or as a comment
// ("# node_id = …"), with the comment above it (or above its block, for
// a block's first setting without one of its own).
type exampleSetting struct {
	name    string // "server.raft_port"
	line    int
	comment string // the comment lines, joined, without their '#'
	set     bool   // an attribute, not a comment
}

// exampleSettings reads example.hcl's settings in order.
func exampleSettings(t *testing.T) []exampleSetting {
	t.Helper()
	src, err := os.ReadFile("../example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, "example.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	lines := strings.Split(string(src), "\n")
	// commentAbove joins the comment lines right above line (1-based).
	commentAbove := func(line int) string {
		var cs []string
		for i := line - 2; i >= 0; i-- {
			l := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(l, "#") {
				break
			}
			cs = append([]string{strings.TrimSpace(strings.TrimPrefix(l, "#"))}, cs...)
		}
		return strings.Join(cs, " ")
	}
	commented := regexp.MustCompile(`^\s*#\s*([a-z_]+)\s*=`)
	var out []exampleSetting
	collect := func(prefix string, body *hclsyntax.Body, blockComment string) {
		attrs := slices.SortedFunc(func(yield func(*hclsyntax.Attribute) bool) {
			for _, a := range body.Attributes {
				if !yield(a) {
					return
				}
			}
		}, func(a, b *hclsyntax.Attribute) int { return a.SrcRange.Start.Line - b.SrcRange.Start.Line })
		var found []exampleSetting
		for i, a := range attrs {
			c := commentAbove(a.SrcRange.Start.Line)
			if i == 0 && c == "" {
				c = blockComment
			}
			found = append(found, exampleSetting{prefix + a.Name, a.SrcRange.Start.Line, c, true})
		}
		// Settings shown as a comment inside the block (at the top level,
		// the comments are prose).
		if prefix != "" {
			for l := body.SrcRange.Start.Line; l < body.SrcRange.End.Line; l++ {
				if m := commented.FindStringSubmatch(lines[l-1]); m != nil {
					found = append(found, exampleSetting{prefix + m[1], l, commentAbove(l), false})
				}
			}
		}
		out = append(out, found...)
	}
	body := f.Body.(*hclsyntax.Body)
	collect("", body, "")
	for _, b := range body.Blocks {
		collect(b.Type+".", b.Body, commentAbove(b.TypeRange.Start.Line))
	}
	return out
}

// TestExampleShowsEverySetting: as the README and docs/configuration.md
// say, every setting the agent takes is in example.hcl (set, or shown as
// a comment), and example.hcl shows no setting the agent lacks.
func TestExampleShowsEverySetting(t *testing.T) {
	shown := map[string]bool{}
	for _, s := range exampleSettings(t) {
		shown[s.name] = true
	}
	names := settingNames()
	if len(names) < 40 {
		t.Fatalf("config.Config has %d settings: the walk is broken", len(names))
	}
	for _, n := range names {
		if !shown[n] {
			t.Errorf("example.hcl does not show %s", n)
		}
		delete(shown, n)
	}
	for n := range shown {
		t.Errorf("example.hcl shows %s, which is no setting of the agent's", n)
	}
}

// TestExampleDefaultsAreTheDefaults: each default example.hcl's comments
// give as a value (`Default "10m"`, `Default 7576`, `Defaults 256, "2m",
// 256` for the settings that follow in order) is the agent's: setting it
// so in a file leaves the configuration as the defaults are.
func TestExampleDefaultsAreTheDefaults(t *testing.T) {
	literal := `"[^"]*"|-?[0-9]+|true|false`
	one := regexp.MustCompile(`\bDefault (` + literal + `)`)
	many := regexp.MustCompile(`\bDefaults ((?:` + literal + `)(?:, (?:` + literal + `))+)`)
	settings := exampleSettings(t)
	documented := map[string]string{} // setting: its default as example.hcl gives it
	for i, s := range settings {
		if m := many.FindStringSubmatch(s.comment); m != nil {
			vals := strings.Split(m[1], ", ")
			if i+len(vals) > len(settings) {
				t.Fatalf("example.hcl:%d gives %d defaults, for fewer settings", s.line, len(vals))
			}
			for j, v := range vals {
				documented[settings[i+j].name] = v
			}
			continue
		}
		if m := one.FindStringSubmatch(s.comment); m != nil {
			documented[s.name] = m[1]
		}
	}
	if len(documented) < 20 {
		t.Fatalf("example.hcl gives %d defaults as values: the scan is broken (%v)", len(documented), documented)
	}
	t.Logf("example.hcl gives %d defaults as values", len(documented))
	for name, v := range documented {
		block, attr, nested := strings.Cut(name, ".")
		src := name + " = " + v + "\n"
		if nested {
			src = fmt.Sprintf("%s {\n  %s = %s\n}\n", block, attr, v)
		}
		path := filepath.Join(t.TempDir(), "agent.hcl")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, diags := config.NewLoader().Load(config.Default(), path)
		if diags.HasErrors() {
			t.Errorf("%s = %s (example.hcl's default): %s", name, v, diags.Error())
			continue
		}
		if diff := cmp.Diff(config.Default(), c, cmpConfig); diff != "" {
			t.Errorf("example.hcl gives %s's default as %s, which is not the agent's (-default +documented):\n%s", name, v, diff)
		}
	}
}

// TestConfigurationDocsLookupBound: docs/configuration.md gives the bound
// of a listen address's lookup as config.ListenLookupTimeout.
func TestConfigurationDocsLookupBound(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	secs := strings.TrimSuffix(config.ListenLookupTimeout.String(), "s")
	for _, want := range []string{
		"resolves within " + secs + " s (`config.ListenLookupTimeout`)",
		"or not within " + secs + " s",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/configuration.md does not say %q (config.ListenLookupTimeout is %v)", want, config.ListenLookupTimeout)
		}
	}
}

// TestConfigurationDocsExample: the refusal docs/configuration.md shows
// (`config validate -dev agent.hcl` with an http.address of another host)
// is what CheckListen says of that file on a host with the addresses it
// lists: the same place, summary and words.
func TestConfigurationDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "$ foreshape config validate -dev agent.hcl\n")
	if !ok {
		t.Fatal("docs/configuration.md shows no `config validate -dev agent.hcl`")
	}
	block, _, _ = strings.Cut(block, "```")
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	// The file: the setting its snippet shows, in the block it names.
	snippet := regexp.MustCompile(`on agent\.hcl line (\d+), in (\w+):`)
	m := snippet.FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("the example shows no snippet of agent.hcl:\n%s", block)
	}
	l := regexp.MustCompile(`(?m)^\s+` + m[1] + `:(.*)$`).FindStringSubmatch(block)
	if l == nil {
		t.Fatalf("the example shows no line %s of agent.hcl:\n%s", m[1], block)
	}
	if m[1] != "2" {
		t.Fatalf("the example's setting is on line %s; this test writes it on line 2", m[1])
	}
	src := m[2] + " {\n" + strings.TrimPrefix(l[1], " ") + "\n}\n" // the snippet puts a space after "2:"
	// The host: the addresses the message says it has, each on a network
	// of its own.
	has := regexp.MustCompile(`\(it has ([^)]*)\)`).FindStringSubmatch(block)
	if has == nil {
		t.Fatalf("the example does not list the host's addresses:\n%s", block)
	}
	host := config.Host{
		Addrs: func() ([]net.Addr, error) {
			var addrs []net.Addr
			for _, a := range strings.Split(has[1], ", ") {
				ip := net.ParseIP(a)
				bits := 128
				if ip.To4() != nil {
					bits = 32
				}
				addrs = append(addrs, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits-8, bits)})
			}
			return addrs, nil
		},
		LookupIP: func(context.Context, string) ([]net.IPAddr, error) {
			return nil, fmt.Errorf("the example looks up no name")
		},
		LookupTimeout: time.Second,
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	c, diags := config.NewLoader().Load(config.DevDefault(), "agent.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	diags = c.CheckListen(host)
	if len(diags) != 1 {
		t.Fatalf("CheckListen: %s; want the one refusal the example shows", diags.Error())
	}
	d := diags[0]
	if got := fmt.Sprintf("%s: error: %s", d.Subject, d.Summary); got != out[0] {
		t.Errorf("the example's first line is %q; CheckListen says %q", out[0], got)
	}
	if got := out[len(out)-1]; got != d.Detail {
		t.Errorf("the example's message is\n%q\nCheckListen says\n%q", got, d.Detail)
	}
}

// TestExampleNamesTheEnvironmentOverrides: each environment variable the
// agent reads (config.EnvVarNames) is named in example.hcl's comment on
// the setting it overrides (or on the settings above it that one comment
// covers).
func TestExampleNamesTheEnvironmentOverrides(t *testing.T) {
	valid := map[string]string{
		"NOMAD_ADDR": "http://127.0.0.1:4646", "NOMAD_REGION": "global", "NOMAD_NAMESPACE": "default", "NOMAD_TOKEN": "t",
		"NOMAD_CACERT": "/ca.pem", "NOMAD_CLIENT_CERT": "/cert.pem", "NOMAD_CLIENT_KEY": "/key.pem",
		"NOMAD_TLS_SERVER_NAME": "server.global.nomad", "NOMAD_SKIP_VERIFY": "true",
		"CONSUL_HTTP_ADDR": "127.0.0.1:8500", "CONSUL_HTTP_TOKEN": "t",
	}
	// comment is each setting's comment, or that of the setting above it
	// in its block when it has none of its own.
	comment := map[string]string{}
	block := func(name string) string { b, _, _ := strings.Cut(name, "."); return b }
	prev := exampleSetting{}
	for _, s := range exampleSettings(t) {
		if s.comment == "" && strings.Contains(s.name, ".") && block(prev.name) == block(s.name) {
			s.comment = prev.comment
		}
		comment[s.name] = s.comment
		prev = s
	}
	for _, name := range config.EnvVarNames() {
		v, ok := valid[name]
		if !ok {
			t.Errorf("the agent reads %s, which this test has no value for", name)
			continue
		}
		c := config.Default()
		if diags := config.ApplyEnv(c, func(n string) string {
			if n == name {
				return v
			}
			return ""
		}); diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		field := ""
		for _, f := range settingNames() {
			if c.Source(f) == "environment variable "+name {
				field = f
			}
		}
		if field == "" {
			t.Errorf("%s=%s sets no setting", name, v)
			continue
		}
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(comment[field]) {
			t.Errorf("example.hcl does not say that %s overrides %s: %q", name, field, comment[field])
		}
	}
}

// TestExampleIOPSQueryIsTheDefault: the iops_query example.hcl shows is
// the query the agent asks without one (node_exporter's disk reads and
// writes, summed over the locality), as its comment and config show -help
// say.
func TestExampleIOPSQueryIsTheDefault(t *testing.T) {
	c, diags := config.NewLoader().Load(config.Default(), "../example.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Prometheus.IOPSQuery != promsource.DefaultIOPSQuery {
		t.Errorf("example.hcl's iops_query is\n%s\nthe agent's default\n%s", c.Prometheus.IOPSQuery, promsource.DefaultIOPSQuery)
	}
}

// TestExamplePrometheusBlock: the settings example.hcl's prometheus block
// shows as comments load as written once uncommented (with the bearer
// token, or with basic auth: not both, as its comment says), and its TLS
// settings are refused with an http:// address, as its comment says.
func TestExamplePrometheusBlock(t *testing.T) {
	src, err := os.ReadFile("../example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	uncomment := func(names ...string) string {
		out := text
		for _, n := range names {
			re := regexp.MustCompile(`(?m)^(\s*)# (` + n + `\s*=)`)
			if !re.MatchString(out) {
				t.Fatalf("example.hcl shows no commented %s", n)
			}
			out = re.ReplaceAllString(out, "$1$2")
		}
		return out
	}
	load := func(src string) (*config.Config, hcl.Diagnostics) {
		path := filepath.Join(t.TempDir(), "agent.hcl")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(path)
	}
	tlsShown := []string{"cert_file", "key_file", "tls_server_name"}
	for _, creds := range [][]string{{"token_file"}, {"username", "password_file"}} {
		c, diags := load(uncomment(append(append(slices.Clone(tlsShown), "headers"), creds...)...))
		if diags.HasErrors() {
			t.Errorf("example.hcl with its prometheus comments %v uncommented: %s", creds, diags.Error())
			continue
		}
		if p := c.Prometheus; p.CertFile == "" || p.KeyFile == "" || p.TLSServerName == "" || p.Headers["X-Scope-OrgID"].Reveal() != "tenant-1" {
			t.Errorf("the uncommented settings did not load: %+v", p)
		}
	}
	_, diags := load(uncomment("token_file", "username", "password_file"))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Invalid prometheus.token_file") {
		t.Errorf("example.hcl with a bearer token and basic auth: %v; want them refused together", diags)
	}
	overHTTP := strings.Replace(uncomment(tlsShown...), `address = "https://prometheus.service.consul:9090"`, `address = "http://prometheus.service.consul:9090"`, 1)
	if overHTTP == uncomment(tlsShown...) {
		t.Fatal("example.hcl's prometheus.address changed: this test no longer finds it")
	}
	_, diags = load(overHTTP)
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	for _, f := range append([]string{"ca_file"}, tlsShown...) {
		if !slices.Contains(summaries, "Invalid prometheus."+f) {
			t.Errorf("example.hcl's prometheus.%s with an http:// address is not refused: %v", f, diags)
		}
	}
}
