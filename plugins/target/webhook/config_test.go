package webhook

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func decode(t *testing.T, src string) (*Config, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	v, diags := Decode(f.Body, "target.webhook")
	c, _ := v.(*Config)
	return c, diags
}

func TestDecodeDefaults(t *testing.T) {
	c, diags := decode(t, `url = "https://scaler.example.com/v1/scale?x=1"`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.URL.Host != "scaler.example.com" || c.Method != "POST" || c.Timeout != DefaultTimeout || c.Body != nil || len(c.Headers) != 0 ||
		c.Retries != DefaultRetries {
		t.Errorf("defaults = %+v", c)
	}
}

func TestDecodeAll(t *testing.T) {
	c, diags := decode(t, `
url     = "http://10.0.0.1:8080/scale"
method  = "put"
headers = { "content-type" = "application/json" }
body    = "{\"count\": {{ .Count }}}"
timeout = "3s"
retries = 0
`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Method != "PUT" || c.Timeout != 3*time.Second || c.Headers["Content-Type"] != "application/json" || c.Retries != 0 {
		t.Errorf("config = %+v", c)
	}
	var buf bytes.Buffer
	if err := c.Body.Execute(&buf, map[string]int{"Count": 4}); err != nil || buf.String() != `{"count": 4}` {
		t.Errorf("body renders %q, %v", buf.String(), err)
	}
	if err := c.Body.Execute(&buf, map[string]int{}); err == nil {
		t.Errorf("a missing key renders silently; want missingkey=error")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"no url", `method = "POST"`, "Missing target.webhook.url"},
		{"relative url", `url = "/scale"`, "Invalid target.webhook.url"},
		{"ftp url", `url = "ftp://x.example.com"`, "Invalid target.webhook.url"},
		{"no host", `url = "https://"`, "Invalid target.webhook.url"},
		{"bad url", `url = "http://[::1"`, "Invalid target.webhook.url"},
		// A port but no host name: Go's dialer goes to this host.
		{"port without host", `url = "http://:8080/scale"`, "has no host name"},
		{"port past 65535", `url = "https://scaler.example.com:99999/scale"`, "port 99999 is outside 1-65535"},
		{"port zero", `url = "https://scaler.example.com:0/scale"`, "port 0 is outside 1-65535"},
		{"get", "url = \"https://x\"\nmethod = \"GET\"", "Invalid target.webhook.method"},
		{"header name", "url = \"https://x\"\nheaders = { \"bad header\" = \"v\" }", "Invalid target.webhook.headers"},
		{"header value", "url = \"https://x\"\nheaders = { a = \"v\\nw\" }", "Invalid target.webhook.headers"},
		{"headers list", "url = \"https://x\"\nheaders = [\"a\"]", "Invalid target.webhook.headers"},
		// Values that would not be sent: foreshape's own headers, the
		// framing Go's client writes, and a name given twice in two cases.
		{"idempotency key", "url = \"https://x\"\nheaders = { \"idempotency-key\" = \"k\" }", "the same on every retry"},
		{"user agent", "url = \"https://x\"\nheaders = { \"User-Agent\" = \"mine\" }", `foreshape sends "foreshape" in it`},
		{"content length", "url = \"https://x\"\nheaders = { \"Content-Length\" = \"3\" }", "the HTTP client writes it from the body"},
		{"header twice", "url = \"https://x\"\nheaders = { authorization = \"a\", Authorization = \"b\" }", `Header "Authorization" is set twice`},
		{"template", "url = \"https://x\"\nbody = \"{{ .Count \"", "Invalid target.webhook.body"},
		{"timeout zero", "url = \"https://x\"\ntimeout = \"0s\"", "Invalid target.webhook.timeout"},
		{"timeout long", "url = \"https://x\"\ntimeout = \"1h\"", "Invalid target.webhook.timeout"},
		{"template field", "url = \"https://x\"\nbody = \"{{ .Cuont }}\"", "Invalid target.webhook.body"},
		{"retries negative", "url = \"https://x\"\nretries = -1", "Invalid target.webhook.retries"},
		{"retries many", "url = \"https://x\"\nretries = 11", "Invalid target.webhook.retries"},
		{"retries string", "url = \"https://x\"\nretries = \"3\"", "Invalid target.webhook.retries"},
		{"unknown", "url = \"https://x\"\nattempts = 3", "Unsupported argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := decode(t, tc.src)
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("diags = %v, want %q", diags, tc.want)
			}
			if c != nil {
				t.Errorf("config returned with errors")
			}
			if diags[0].Subject == nil || diags[0].Subject.Filename != "t.hcl" {
				t.Errorf("error without a position: %v", diags[0])
			}
		})
	}
}

// TestConfigEqual: two decodings of the same block are Equal (their body
// templates, parsed twice, are compared by their source); a block that
// differs in its url, a header or its body is not.
func TestConfigEqual(t *testing.T) {
	const block = `
url     = "https://scaler.example.com/scale"
headers = { "x-team" = "web" }
body    = "{\"count\": {{ .Count }}}"
`
	a, _ := decode(t, block)
	b, _ := decode(t, block)
	if !a.Equal(b) {
		t.Errorf("two decodings of one block are not Equal")
	}
	for _, other := range []string{
		strings.Replace(block, "scaler.example.com", "scaler-2.example.com", 1),
		strings.Replace(block, `"web"`, `"api"`, 1),
		strings.Replace(block, `{{ .Count }}`, `{{ .Count }}, \"why\": \"x\"`, 1),
		`url = "https://scaler.example.com/scale"`,
	} {
		if c, _ := decode(t, other); a.Equal(c) || c.Equal(a) {
			t.Errorf("a block differing from\n%s\nis Equal to it:\n%s", block, other)
		}
	}
	if a.Equal((*Config)(nil)) || a.Equal("x") {
		t.Error("Equal to a nil *Config or another type")
	}
}
