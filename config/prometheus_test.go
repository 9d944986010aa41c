package config_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/config"
)

// TestPrometheusAccessRefusals: the settings of how the agent reaches
// Prometheus are refused, naming the file, line and setting, when they
// could not work as written: TLS settings with an http:// address, a
// client certificate without its key (or a key without its certificate),
// basic auth without its user or password file, a bearer token beside
// basic auth, a header the agent sets itself (or one set twice, or not a
// header), any of them without prometheus.address, and any on a client
// agent.
func TestPrometheusAccessRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string // the prometheus block's body, from line 2
		// want: the summary of the one error, the line it points at, and
		// words its detail says.
		want   string
		line   int
		detail []string
	}{
		{name: "valid over https", src: `address = "https://prom.internal:9090"
  ca_file         = "/etc/ca.pem"
  cert_file       = "/etc/c.pem"
  key_file        = "/etc/k.pem"
  tls_server_name = "prom.internal"
  token_file      = "/etc/token"
  headers         = { "X-Scope-OrgID" = "tenant-1", "x-custom" = "a" }`},
		{name: "valid basic auth over http", src: `address = "http://prom.internal:9090"
  username      = "foreshape"
  password_file = "/etc/password"`},
		{name: "ca_file over http", want: "Invalid prometheus.ca_file", line: 3, src: `address = "http://prom.internal:9090"
  ca_file = "/etc/ca.pem"`,
			detail: []string{`prometheus.address "http://prom.internal:9090" is not an https:// URL, so the agent talks to Prometheus without TLS`,
				"Set prometheus.address to Prometheus's https:// URL, or remove prometheus.ca_file"}},
		{name: "skip_verify over http", want: "Invalid prometheus.skip_verify", line: 3, src: `address = "http://prom.internal:9090"
  skip_verify = true`},
		{name: "tls_server_name over http", want: "Invalid prometheus.tls_server_name", line: 3, src: `address = "http://prom.internal:9090"
  tls_server_name = "prom.internal"`},
		{name: "cert_file without key_file", want: "Missing prometheus.key_file", line: 3, src: `address = "https://prom.internal:9090"
  cert_file = "/etc/c.pem"`, detail: []string{"a client certificate needs its key"}},
		{name: "key_file without cert_file", want: "Missing prometheus.cert_file", line: 3, src: `address = "https://prom.internal:9090"
  key_file = "/etc/k.pem"`},
		{name: "username without password_file", want: "Missing prometheus.password_file", line: 3, src: `address = "http://prom.internal:9090"
  username = "foreshape"`},
		{name: "password_file without username", want: "Missing prometheus.username", line: 3, src: `address = "http://prom.internal:9090"
  password_file = "/etc/password"`},
		{name: "token beside basic auth", want: "Invalid prometheus.token_file", line: 3, src: `address = "http://prom.internal:9090"
  token_file    = "/etc/token"
  username      = "foreshape"
  password_file = "/etc/password"`, detail: []string{"each is sent as the Authorization header"}},
		{name: "token_file without address", want: "Invalid prometheus.token_file", line: 2, src: `token_file = "/etc/token"`,
			detail: []string{"prometheus.token_file is set but prometheus.address is not set"}},
		{name: "headers without address", want: "Invalid prometheus.headers", line: 2, src: `headers = { "X-Scope-OrgID" = "tenant-1" }`},
		{name: "Authorization header", want: "Invalid prometheus.headers", line: 4, src: `address = "http://prom.internal:9090"
  headers = {
    "Authorization" = "Bearer abc"
  }`, detail: []string{`"Authorization" is a header foreshape sets itself`, "prometheus.token_file"}},
		{name: "Host header", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "X-Scope-OrgID" = "tenant-1", host = "other" }`, detail: []string{`"host" is a header foreshape sets itself`, "prometheus.address's host"}},
		{name: "Content-Type header", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "content-type" = "application/json" }`, detail: []string{`"content-type" is a header foreshape sets itself: its HTTP client sets it`}},
		{name: "Content-Length header", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "Content-Length" = "12" }`, detail: []string{`"Content-Length" is a header foreshape sets itself: its HTTP client sets it`}},
		{name: "Accept-Encoding header", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "Accept-Encoding" = "br" }`, detail: []string{`"Accept-Encoding" is a header foreshape sets itself: its HTTP client sets it`}},
		{name: "Proxy-Authorization header", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "Proxy-Authorization" = "Basic abc" }`, detail: []string{`"Proxy-Authorization" is a header foreshape sets itself`}},
		{name: "a header twice", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "X-Scope-OrgID" = "a", "x-scope-orgid" = "b" }`, detail: []string{"are the same header"}},
		{name: "not a header name", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "X Tenant" = "a" }`, detail: []string{`"X Tenant" is not an HTTP header name`}},
		{name: "a header value over two lines", want: "Invalid prometheus.headers", line: 3, src: `address = "http://prom.internal:9090"
  headers = { "X-Scope-OrgID" = "a\nInjected: b" }`, detail: []string{"holds a line break"}},
		{name: "credentials in the address", want: "Invalid prometheus.address", line: 2, src: `address = "http://alice:pa55word@prom.internal:9090"`,
			detail: []string{"set prometheus.username and prometheus.password_file for basic auth, or prometheus.token_file"}},
		{name: "username with a colon", want: "Invalid prometheus.username", line: 3, src: `address = "http://prom.internal:9090"
  username      = "a:b"
  password_file = "/etc/password"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := loadSrc(t, "prometheus {\n  "+tc.src+"\n}\n")
			var errs hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d)
				}
			}
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %s", errs.Error())
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("%d errors: %s; want one %q", len(errs), errs.Error(), tc.want)
			}
			d := errs[0]
			if !strings.HasPrefix(d.Summary, tc.want) {
				t.Errorf("error %q, want %q", d.Summary, tc.want)
			}
			if d.Subject == nil || !strings.HasSuffix(d.Subject.Filename, "agent.hcl") || d.Subject.Start.Line != tc.line {
				t.Errorf("error at %v, want agent.hcl line %d: %s", d.Subject, tc.line, d.Error())
			}
			for _, w := range tc.detail {
				if !strings.Contains(d.Detail, w) {
					t.Errorf("detail %q does not say %q", d.Detail, w)
				}
			}
			if strings.Contains(d.Error(), "pa55word") || strings.Contains(d.Error(), "Bearer abc") {
				t.Errorf("the error shows a credential: %s", d.Error())
			}
			_ = c
		})
	}
	// Each needs prometheus.address; a client agent reads no Prometheus,
	// and refuses every one of them.
	for name, value := range map[string]string{
		"ca_file": `"/etc/ca.pem"`, "cert_file": `"/etc/c.pem"`, "key_file": `"/etc/k.pem"`, "tls_server_name": `"prom.internal"`,
		"skip_verify": "true", "token_file": `"/etc/token"`, "username": `"foreshape"`, "password_file": `"/etc/password"`,
		"headers": `{ "X-Scope-OrgID" = "tenant-1" }`,
	} {
		field := "prometheus." + name
		for _, tc := range []struct{ src, want string }{
			{"", field + " is set but prometheus.address is not set"},
			{"server {\n  enabled = false\n  retry_join = [\"10.0.0.1\"]\n}\n", field + " is set but server.enabled is false"},
		} {
			_, diags := loadSrc(t, tc.src+"prometheus {\n  "+name+" = "+value+"\n}\n")
			found := false
			for _, d := range diags {
				found = found || d.Summary == "Invalid "+field && strings.Contains(d.Detail, tc.want) && d.Subject != nil
			}
			if !found {
				t.Errorf("%s: %v; want a refusal saying %q at its line", field, diags, tc.want)
			}
		}
	}
}

// TestPrometheusSkipVerifyWarned: skip_verify over https is taken with a
// warning.
func TestPrometheusSkipVerifyWarned(t *testing.T) {
	_, diags := loadSrc(t, "prometheus {\n  address = \"https://prom.internal:9090\"\n  skip_verify = true\n}\n")
	if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Questionable prometheus.skip_verify" {
		t.Errorf("diagnostics %v; want one warning about prometheus.skip_verify", diags)
	}
}

// TestPrometheusHeadersNotShown: the values of prometheus.headers are
// printed as secrets are, in config show (its names, as a comment), its
// JSON, the log and diagnostics' snippets; the files' paths and the user
// name are shown.
func TestPrometheusHeadersNotShown(t *testing.T) {
	const tenant, apiKey = "tenant-7f3a", "key-91bc-secret"
	src := fmt.Sprintf(`prometheus {
  address       = "https://prom.internal:9090"
  username      = "foreshape"
  password_file = "/etc/foreshape/prometheus-password"
  headers = {
    "X-Scope-OrgID" = %q
    "X-Api-Key"     = %q
  }
}
`, tenant, apiKey)
	dir := writeFiles(t, map[string]string{"a.hcl": src})
	c, diags := config.Load(filepath.Join(dir, "a.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Prometheus.Headers["X-Scope-OrgID"].Reveal() != tenant || c.Prometheus.Headers["X-Api-Key"].Reveal() != apiKey {
		t.Fatalf("headers %v: not loaded under their names", c.Prometheus.Headers)
	}
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var logText bytes.Buffer
	hclog.New(&hclog.LoggerOptions{Output: &logText}).Info("config", "config", c, "prometheus", c.Prometheus)
	shown := string(c.HCL())
	for name, out := range map[string]string{
		"JSON": string(js), "HCL": shown, "log": logText.String(), "%+v": fmt.Sprintf("%+v", c),
		"snippet": string(config.RedactSource([]byte(src))),
	} {
		if strings.Contains(out, tenant) || strings.Contains(out, apiKey) {
			t.Errorf("%s shows a header's value:\n%s", name, out)
		}
	}
	for _, want := range []string{`# headers = { "X-Api-Key" = <redacted>, "X-Scope-OrgID" = <redacted> } (set; values not shown)`,
		`username      = "foreshape"`, `password_file = "/etc/foreshape/prometheus-password"`} {
		if !strings.Contains(shown, want) {
			t.Errorf("config show lacks %q:\n%s", want, shown)
		}
	}
	if !strings.Contains(string(js), `"X-Api-Key": "<redacted>"`) {
		t.Errorf("JSON does not show that the header is set:\n%s", js)
	}
}

// TestPrometheusCredentialsInClearTextWarned: a token or password sent
// over http:// to another host is warned of, naming the setting; to a
// loopback address, or over https://, it is not.
func TestPrometheusCredentialsInClearTextWarned(t *testing.T) {
	for _, tc := range []struct {
		address, creds, want string
	}{
		{"http://prom.internal:9090", `token_file = "/etc/foreshape/prom-token"`, "prometheus.token_file"},
		{"http://10.0.0.5:9090", "username = \"foreshape\"\n  password_file = \"/etc/foreshape/prom-password\"", "prometheus.password_file"},
		{"http://127.0.0.1:9090", `token_file = "/etc/foreshape/prom-token"`, ""},
		{"http://localhost:9090", `token_file = "/etc/foreshape/prom-token"`, ""},
		{"https://prom.internal:9090", `token_file = "/etc/foreshape/prom-token"`, ""},
		{"http://prom.internal:9090", "", ""},
	} {
		_, diags := loadSrc(t, fmt.Sprintf("prometheus {\n  address = %q\n  %s\n}\n", tc.address, tc.creds))
		if diags.HasErrors() {
			t.Fatalf("%s %s: %v", tc.address, tc.creds, diags)
		}
		if tc.want == "" {
			if len(diags) != 0 {
				t.Errorf("%s %s: %v; want no warning", tc.address, tc.creds, diags)
			}
			continue
		}
		if len(diags) != 1 || diags[0].Summary != "Questionable "+tc.want || !strings.Contains(diags[0].Detail, "clear text") || diags[0].Subject == nil {
			t.Errorf("%s %s: %v; want one warning about %s in clear text, at its line", tc.address, tc.creds, diags, tc.want)
		}
	}
}
