// Package webhook is the "webhook" scale target: it asks an external
// system to scale by sending an HTTP request whose body is foreshape's JSON
// payload (target.Payload) or rendered from a template over it.
//
// config.go holds the target's settings, their defaults and validation,
// which run when a policy loads; webhook.go is the runtime. This package
// must never send a request or resolve a host while validating.
package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/policies/hclfield"
)

// Name is the plugin name used in `target "webhook" { ... }`.
const Name = "webhook"

// Defaults.
const (
	DefaultMethod  = http.MethodPost
	DefaultTimeout = 10 * time.Second
	// MaxTimeout bounds how long a scale request may block its caller.
	MaxTimeout = 5 * time.Minute
	// DefaultRetries is how many times a request is repeated after a
	// timeout, a connection error, 408, 429 or 5xx.
	DefaultRetries = 3
	// MaxRetries bounds retries.
	MaxRetries = 10
)

// Methods are the HTTP methods a webhook may use.
var Methods = []string{http.MethodPost, http.MethodPut, http.MethodPatch}

// Config is the validated settings of a webhook target.
type Config struct {
	// URL is an absolute http or https URL. Required.
	URL *url.URL
	// Method is POST, PUT or PATCH. Default POST.
	Method string
	// Headers are sent with each request, keys in canonical form.
	Headers map[string]string
	// Body is the parsed request body template; nil sends no body.
	Body *template.Template
	// BodySource is the template's text.
	BodySource string
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// Retries is how many times a failed request is repeated (with
	// back-off 1s, 2s, 4s … at most 30s, or the answer's Retry-After).
	// Default 3.
	Retries int
}

// Equal reports whether o is a *Config with the same settings, the body
// compared by its source: a parsed template holds functions, which no two
// parses of the same text share.
func (c *Config) Equal(o any) bool {
	d, ok := o.(*Config)
	if !ok || c == nil || d == nil {
		return ok && c == d
	}
	a, b := *c, *d
	a.Body, b.Body = nil, nil
	return reflect.DeepEqual(a, b) && (c.Body == nil) == (d.Body == nil)
}

type configHCL struct {
	URL     hcl.Expression `hcl:"url,optional"`
	Method  hcl.Expression `hcl:"method,optional"`
	Headers hcl.Expression `hcl:"headers,optional"`
	Body    hcl.Expression `hcl:"body,optional"`
	Timeout hcl.Expression `hcl:"timeout,optional"`
	Retries hcl.Expression `hcl:"retries,optional"`
}

// Spec validates webhook settings.
var Spec policies.TargetSpec = policies.TargetFunc(Decode)

// Decode validates the body of a webhook target block.
func Decode(body hcl.Body, prefix string) (any, hcl.Diagnostics) {
	var h configHCL
	// An unknown argument does not stop the checks of the known ones (the
	// decode still fills them): every problem is reported at once.
	diags := gohcl.DecodeBody(body, nil, &h)
	cfg := &Config{Method: DefaultMethod, Timeout: DefaultTimeout, Retries: DefaultRetries}

	diags = append(diags, hclfield.Required(h.URL, prefix+".url")...)
	if u, ok, d := hclfield.URL(h.URL, prefix+".url"); ok {
		// url.Parse takes both; the request would go to this host, or
		// fail at each action.
		if u.Hostname() == "" {
			diags = append(diags, hclfield.Invalid(h.URL.Range(), prefix+".url", "%q has no host name.", shown(u)))
		} else if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				diags = append(diags, hclfield.Invalid(h.URL.Range(), prefix+".url", "%q: port %s is outside 1-65535.", shown(u), p))
			}
		}
		cfg.URL = u
	} else {
		diags = append(diags, d...)
	}

	if v, ok, d := hclfield.String(h.Method, prefix+".method"); ok {
		m := strings.ToUpper(v)
		if !contains(Methods, m) {
			diags = append(diags, hclfield.Invalid(h.Method.Range(), prefix+".method", "%q is not one of %s.", v, hclfield.QuoteList(Methods)))
		} else {
			cfg.Method = m
		}
	} else {
		diags = append(diags, d...)
	}

	if hs, ok, d := hclfield.StringMap(h.Headers, prefix+".headers"); ok {
		cfg.Headers = make(map[string]string, len(hs))
		keys := make([]string, 0, len(hs))
		for k := range hs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !validHeaderName(k) {
				diags = append(diags, hclfield.Invalid(h.Headers.Range(), prefix+".headers", "%q is not a valid HTTP header name.", k))
				continue
			}
			if strings.ContainsAny(hs[k], "\r\n") {
				diags = append(diags, hclfield.Invalid(h.Headers.Range(), prefix+".headers", "The value of header %q must not contain a line break.", k))
				continue
			}
			ck := textproto.CanonicalMIMEHeaderKey(k)
			if why, set := headersNotSet[ck]; set {
				diags = append(diags, hclfield.Invalid(h.Headers.Range(), prefix+".headers", "Header %q cannot be set here: %s.", k, why))
				continue
			}
			if _, twice := cfg.Headers[ck]; twice {
				diags = append(diags, hclfield.Invalid(h.Headers.Range(), prefix+".headers",
					"Header %q is set twice: header names are the same in any case, so only one value would be sent.", ck))
				continue
			}
			cfg.Headers[ck] = hs[k]
		}
	} else {
		diags = append(diags, d...)
	}

	if src, ok, d := hclfield.String(h.Body, prefix+".body"); ok {
		t, err := template.New(prefix + ".body").Option("missingkey=error").Funcs(bodyFuncs).Parse(src)
		if err != nil {
			diags = append(diags, hclfield.Invalid(h.Body.Range(), prefix+".body", "The body is not a valid Go text/template: %s.", err))
		} else if err := t.Execute(io.Discard, target.Payload{}); err != nil {
			// A field the payload lacks ({{ .Cuont }}) fails here, not at
			// the first scale action.
			diags = append(diags, hclfield.Invalid(h.Body.Range(), prefix+".body",
				"The body template does not render over the scale payload (its fields are %s): %s.", payloadFields, err))
		} else {
			cfg.Body, cfg.BodySource = t, src
		}
	} else {
		diags = append(diags, d...)
	}

	if v, ok, d := hclfield.Duration(h.Timeout, prefix+".timeout"); ok {
		if v <= 0 || v > MaxTimeout {
			diags = append(diags, hclfield.Invalid(h.Timeout.Range(), prefix+".timeout",
				"%s is outside (0, %s].", hclfield.FormatDuration(v), hclfield.FormatDuration(MaxTimeout)))
		} else {
			cfg.Timeout = v
		}
	} else {
		diags = append(diags, d...)
	}

	if v, ok, d := hclfield.Int(h.Retries, prefix+".retries"); ok {
		if v < 0 || v > MaxRetries {
			diags = append(diags, hclfield.Invalid(h.Retries.Range(), prefix+".retries", "%d is outside [0, %d].", v, MaxRetries))
		} else {
			cfg.Retries = v
		}
	} else {
		diags = append(diags, d...)
	}

	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// bodyFuncs are the functions a body template may call besides Go's: json
// writes a value as JSON ({{ json .Reason }} is a quoted, escaped string;
// the reason always holds quotes, so "{{ .Reason }}" is no JSON string).
var bodyFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// payloadFields lists what a body template may use.
// headersNotSet are the headers whose value in headers would not be
// sent, and why: foreshape sets two on every request, and Go's HTTP
// client writes the framing ones from the body, dropping a value given.
var headersNotSet = map[string]string{
	HeaderIdempotencyKey: "foreshape sends the action's id in it, the same on every retry, so that the receiver can tell a retry from a new action",
	"User-Agent":         `foreshape sends "foreshape" in it`,
	"Content-Length":     "the HTTP client writes it from the body",
	"Transfer-Encoding":  "the HTTP client writes it from the body",
	"Trailer":            "the HTTP client writes it from the body",
}

const payloadFields = ".RequestID, .Policy, .Scale, .Locality, .Direction, .Amount, .Count, .Min, .Max, .Reason, .Time"

// validHeaderName reports whether s is an HTTP token (RFC 9110 field-name).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 126 || r <= 32 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
