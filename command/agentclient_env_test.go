package command

import (
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api/apitest"
)

// TestBadAddressFromTheEnvironment: FORESHAPE_ADDR is checked as -address
// is, a usage error (exit 2) naming the variable, before any request; it
// was sent as it stood and failed as a request (exit 1) with Go's own
// error. An -address overrides it without it being looked at.
func TestBadAddressFromTheEnvironment(t *testing.T) {
	for env, want := range map[string]string{
		"ftp://x":         `FORESHAPE_ADDR: "ftp://x": the scheme must be http or https, not "ftp"`,
		" ":               "FORESHAPE_ADDR: empty",
		"127.0.0.1:99999": `FORESHAPE_ADDR: "127.0.0.1:99999": the port must be 1 to 65535`,
		"http://":         `FORESHAPE_ADDR: "http://" names no host`,
	} {
		t.Setenv("FORESHAPE_ADDR", env)
		for _, args := range [][]string{{"queue", "list"}, {"status"}, {"operator", "raft", "remove-peer", "-id", "x"}} {
			code, out, errOut := runCLI(t, args...)
			if code != ExitUsage || !strings.Contains(errOut, want) || out != "" {
				t.Errorf("FORESHAPE_ADDR=%q %v: exit %d, %q%q; want 2 and %q", env, args, code, out, errOut, want)
			}
		}
	}
	addr := actAgent(t, apitest.New())
	if code, _, errOut := runCLI(t, "queue", "list", "-address", addr); code != ExitOK {
		t.Errorf("-address %s over a bad FORESHAPE_ADDR: exit %d, %s", addr, code, errOut)
	}
	// A bad -address is still the flag's error.
	if code, _, errOut := runCLI(t, "queue", "list", "-address", "ftp://y"); code != ExitUsage ||
		!strings.Contains(errOut, `invalid value "ftp://y" for flag -address: "ftp://y": the scheme must be http or https`) {
		t.Errorf("-address ftp://y: exit %d, %q", code, errOut)
	}
	t.Setenv("FORESHAPE_ADDR", addr)
	if code, _, errOut := runCLI(t, "queue", "list"); code != ExitOK {
		t.Errorf("FORESHAPE_ADDR=%s: exit %d, %s", addr, code, errOut)
	}
	t.Setenv("FORESHAPE_ADDR", "")
	if code, _, errOut := runCLI(t, "queue", "list", "-address", addr); code != ExitOK {
		t.Errorf("an empty FORESHAPE_ADDR (unset): exit %d, %s", code, errOut)
	}
}

// TestTokenNoHeaderCanCarry: a token with a control character within it
// (the newline between two lines of a file, an escape), from -token or
// FORESHAPE_TOKEN, is a usage error naming where it came from, before any
// request, and never printing the token; it was net/http's "invalid header
// field value", exit 1. White space around a token is still trimmed, and a
// good -token overrides a bad FORESHAPE_TOKEN.
func TestTokenNoHeaderCanCarry(t *testing.T) {
	addr := actAgent(t, apitest.New(), "s3cret")
	for _, tc := range []struct {
		env   string
		args  []string
		want  string
		shown []string
	}{
		{env: "s3cret\nother", want: "FORESHAPE_TOKEN: the token holds a control character (0x0a, its byte 7)", shown: []string{"s3cret", "other"}},
		{env: "s3cret", args: []string{"-token", "abc\x1b[2Jdef"}, want: "-token: the token holds a control character (0x1b, its byte 4)", shown: []string{"abc", "def"}},
		{env: "ab\x7fcd", want: "FORESHAPE_TOKEN: the token holds a control character (0x7f, its byte 3)", shown: []string{"ab", "cd"}},
	} {
		t.Setenv("FORESHAPE_TOKEN", tc.env)
		code, out, errOut := runCLI(t, append([]string{"queue", "list", "-address", addr}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q %q: exit %d, %q%q; want 2 and %q", tc.env, tc.args, code, out, errOut, tc.want)
		}
		for _, s := range tc.shown {
			if strings.Contains(errOut, s) {
				t.Errorf("%q %q: the error shows the token (%q): %q", tc.env, tc.args, s, errOut)
			}
		}
	}
	t.Setenv("FORESHAPE_TOKEN", "s3cret\nother")
	if code, _, errOut := runCLI(t, "queue", "list", "-address", addr, "-token", "s3cret"); code != ExitOK {
		t.Errorf("-token over a bad FORESHAPE_TOKEN: exit %d, %s", code, errOut)
	}
	t.Setenv("FORESHAPE_TOKEN", "\ts3cret\r\n")
	if code, _, errOut := runCLI(t, "queue", "list", "-address", addr); code != ExitOK {
		t.Errorf("a token with white space around it: exit %d, %s", code, errOut)
	}
}
