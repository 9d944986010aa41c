package config

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Redacted is what a set Secret prints as.
const Redacted = "<redacted>"

// Secret is a credential such as a Nomad or Consul token. Every printed,
// logged or marshalled form of a non-empty Secret is "<redacted>"; an empty
// Secret prints as "". Use Reveal only to hand the value to a client.
type Secret string

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String returns "<redacted>" for a set secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the credential.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Format makes every fmt verb (%s, %v, %q, %x, ...) print the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// MarshalText writes the redacted form, for encoders that use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// secretKey matches an attribute line whose name speaks of a credential
// (token, secret, password, auth, API key, cookie), misspelt ones
// included: its name and "=".
var secretKey = regexp.MustCompile(`(?i)^(\s*"?([a-z0-9_.-]*(?:tok|secret|passw|auth|api[-_]?key|cookie)[a-z0-9_.-]*)"?\s*[=:])`)

// RedactSource returns src with the value of every line that sets a
// credential, every value of a headers map (a webhook target's, which
// carry API keys and Authorization), every URL's password and the values
// of every URL's query (?token=…) replaced by asterisks, for the source
// snippets of diagnostics: a line the parser cannot read (a token set
// twice, an unterminated string, a misspelt name) is shown as it is
// written. Every byte keeps its offset, so the diagnostics' positions
// still point where they did.
func RedactSource(src []byte) []byte {
	out := []byte(string(src))
	star := func(from, to int) {
		for i := from; i < to; i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = '*'
			}
		}
	}
	start := 0
	inHeaders := false // within a headers = { … } spread over lines
	for _, line := range strings.SplitAfter(string(src), "\n") {
		end := start + len(strings.TrimRight(line, "\r\n"))
		switch m := secretKey.FindStringSubmatchIndex(line); {
		case inHeaders:
			// "Name" = "value", or the closing brace.
			if i := strings.IndexAny(line, "=:"); i >= 0 {
				star(start+i+1, end)
			}
			inHeaders = !strings.Contains(line, "}")
		case headersKey.MatchString(line):
			i := strings.Index(line, "{")
			star(start+i+1, end)
			inHeaders = !strings.Contains(line[i:], "}")
			if !inHeaders {
				// Keep the closing brace where it was.
				out[start+strings.LastIndex(line, "}")] = '}'
			}
		case m != nil && !strings.HasSuffix(strings.ToLower(line[m[4]:m[5]]), "_file"):
			if value := end - (start + m[3]); value > 0 {
				copy(out[start+m[3]:], " "+strings.Repeat("*", value-1))
			}
		}
		start += len(line)
	}
	for _, m := range urlPassword.FindAllSubmatchIndex(out, -1) {
		star(m[2], m[3])
	}
	for _, m := range urlQuery.FindAllSubmatchIndex(out, -1) {
		q := out[m[2]:m[3]]
		for i := 0; i < len(q); {
			eq := strings.IndexByte(string(q[i:]), '=')
			if eq < 0 {
				break
			}
			amp := strings.IndexByte(string(q[i+eq:]), '&')
			if amp < 0 {
				amp = len(q) - (i + eq)
			}
			star(m[2]+i+eq+1, m[2]+i+eq+amp)
			i += eq + amp + 1
		}
	}
	return out
}

// headersKey matches a line that opens a headers map ("headers = {").
var headersKey = regexp.MustCompile(`^\s*"?headers"?\s*=\s*\{`)

// urlQuery matches a URL's query, its group.
var urlQuery = regexp.MustCompile(`://[^\s"?]*\?([^\s"#]*)`)

// urlPassword matches a URL's credentials ("://user:password@"), the
// password its group.
var urlPassword = regexp.MustCompile(`://[^/@\s"]*?:([^/@\s"]*)@`)

// RedactURL replaces the password of every URL in s with <redacted>.
func RedactURL(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range urlPassword.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[2]])
		b.WriteString(Redacted)
		last = m[3]
	}
	b.WriteString(s[last:])
	return b.String()
}
