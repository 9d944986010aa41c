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
// (token, secret, password), misspelt ones included: its name and "=".
var secretKey = regexp.MustCompile(`(?i)^(\s*"?([a-z0-9_.-]*(?:tok|secret|passw)[a-z0-9_.-]*)"?\s*[=:])`)

// RedactSource returns src with the value of every line that sets a
// credential, and every URL's password, replaced by asterisks, for the
// source snippets of diagnostics: a line the parser cannot read (a token
// set twice, an unterminated string, a misspelt name) is shown as it is
// written. Every byte keeps its offset, so the diagnostics' positions
// still point where they did.
func RedactSource(src []byte) []byte {
	out := []byte(string(src))
	start := 0
	for _, line := range strings.SplitAfter(string(src), "\n") {
		m := secretKey.FindStringSubmatchIndex(line)
		if m != nil && !strings.HasSuffix(strings.ToLower(line[m[4]:m[5]]), "_file") {
			value := len(strings.TrimRight(line, "\r\n")) - m[3]
			if value > 0 {
				copy(out[start+m[3]:], " "+strings.Repeat("*", value-1))
			}
		}
		start += len(line)
	}
	for _, m := range urlPassword.FindAllSubmatchIndex(out, -1) {
		for i := m[2]; i < m[3]; i++ {
			out[i] = '*'
		}
	}
	return out
}

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
