// Package realnomad gives the tests that run against a real Nomad
// (NOMAD_ADDR) the tokens of their two kinds of calls: foreshape's own,
// made with NOMAD_TOKEN as the agents make them (on a Nomad with ACLs, a
// token of deploy/foreshape-acl.hcl's policy), and the test's set-up
// (registering its workloads, cleaning up, reading what Nomad did), made
// with NOMAD_MANAGEMENT_TOKEN, which may grant more than that policy.
//
// A Nomad with TLS is reached as Nomad's CLI reaches it: NOMAD_ADDR is
// an https:// URL and NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY
// and NOMAD_TLS_SERVER_NAME say how (TLS for the tests' own clients,
// NomadTLS or TLSEnv for the agents they start).
//
// It is for tests only: it must never be imported by non-test code.
package realnomad

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Token is NOMAD_TOKEN, the token of foreshape's own calls.
func Token() string { return os.Getenv("NOMAD_TOKEN") }

// tlsVars are the variables of Nomad's CLI (and nomad/api's DefaultConfig)
// that say how to reach a Nomad with TLS, with the agent's settings of
// the same meaning.
var tlsVars = []struct{ name, setting string }{
	{"NOMAD_CACERT", "ca_file"},
	{"NOMAD_CLIENT_CERT", "cert_file"},
	{"NOMAD_CLIENT_KEY", "key_file"},
	{"NOMAD_TLS_SERVER_NAME", "tls_server_name"},
}

// TLS is the TLS configuration of a test's own client of the Nomad at
// NOMAD_ADDR, from NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and
// NOMAD_TLS_SERVER_NAME; nil when none is set.
func TLS() *api.TLSConfig {
	v := map[string]string{}
	for _, e := range tlsVars {
		v[e.name] = os.Getenv(e.name)
	}
	if v["NOMAD_CACERT"] == "" && v["NOMAD_CLIENT_CERT"] == "" && v["NOMAD_CLIENT_KEY"] == "" && v["NOMAD_TLS_SERVER_NAME"] == "" {
		return nil
	}
	return &api.TLSConfig{CACert: v["NOMAD_CACERT"], ClientCert: v["NOMAD_CLIENT_CERT"], ClientKey: v["NOMAD_CLIENT_KEY"],
		TLSServerName: v["NOMAD_TLS_SERVER_NAME"]}
}

// NomadTLS is what an agent's nomad block needs, beside its address, to
// call the Nomad at addr as the test does: for an https:// addr, the
// nomad.ca_file, cert_file, key_file and tls_server_name lines of the
// NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and
// NOMAD_TLS_SERVER_NAME that are set, each indented by indent and ending
// in a newline; "" for any other address (the agent refuses TLS settings
// over http:// or a unix:// socket).
func NomadTLS(addr, indent string) string {
	if !strings.HasPrefix(addr, "https://") {
		return ""
	}
	var b strings.Builder
	for _, e := range tlsVars {
		if v := os.Getenv(e.name); v != "" {
			fmt.Fprintf(&b, "%s%s = %q\n", indent, e.setting, v)
		}
	}
	return b.String()
}

// TLSEnv is the environment an agent process needs to reach the Nomad at
// addr with TLS: NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and
// NOMAD_TLS_SERVER_NAME as the test has them, which the agent reads as
// its nomad settings. None over http:// or a socket.
func TLSEnv(addr string) []string {
	if !strings.HasPrefix(addr, "https://") {
		return nil
	}
	var env []string
	for _, e := range tlsVars {
		if v := os.Getenv(e.name); v != "" {
			env = append(env, e.name+"="+v)
		}
	}
	return env
}

// SetupToken is the token of a test's set-up against the Nomad at addr:
// NOMAD_MANAGEMENT_TOKEN when it is set; otherwise NOMAD_TOKEN when that
// Nomad has no ACLs or NOMAD_TOKEN is a management token. A test on a Nomad
// with ACLs that has neither is skipped, saying so.
func SetupToken(t testing.TB, addr string) string {
	t.Helper()
	if tok := os.Getenv("NOMAD_MANAGEMENT_TOKEN"); tok != "" {
		return tok
	}
	self, _, err := Client(t, addr, Token()).ACLTokens().Self(nil)
	switch {
	case err != nil:
		t.Skipf("NOMAD_MANAGEMENT_TOKEN is not set and the Nomad at %s does not say what NOMAD_TOKEN is (%v): "+
			"set NOMAD_MANAGEMENT_TOKEN to a management token for the test's own set-up (foreshape's calls use NOMAD_TOKEN)", addr, err)
	case self.AccessorID == "acls-disabled" || self.Type == "management":
		// Nomad answers for every token with this one when its ACLs are off.
		return Token()
	default:
		t.Skipf("the Nomad at %s has ACLs enabled and NOMAD_TOKEN is a %s token (%q): set NOMAD_MANAGEMENT_TOKEN to a "+
			"management token for the test's own set-up (registering its workloads); foreshape's calls use NOMAD_TOKEN", addr, self.Type, self.Name)
	}
	return ""
}

// Client is an API client of the Nomad at addr with token, and TLS's
// settings.
func Client(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, SecretID: token, TLSConfig: TLS()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NodeDownUp is how a test takes a real Nomad's client node down and back
// up: NOMAD_DOWN_NODE names the node, and NOMAD_NODE_DOWN_CMD and
// NOMAD_NODE_UP_CMD are shell commands that stop and resume its client
// agent (for example pkill -STOP and pkill -CONT of its process). It
// skips the test, saying what to set, when one is unset. A node left down
// is brought up when the test ends, and a node the test took down is
// waited for until NOMAD_ADDR shows it ready again (two minutes at most),
// so that the next test finds it as this one did.
func NodeDownUp(t testing.TB) (name string, down, up func()) {
	t.Helper()
	name, downCmd, upCmd := os.Getenv("NOMAD_DOWN_NODE"), os.Getenv("NOMAD_NODE_DOWN_CMD"), os.Getenv("NOMAD_NODE_UP_CMD")
	if name == "" || downCmd == "" || upCmd == "" {
		t.Skip("a Nomad dev agent's own node cannot be taken down while its client runs: set NOMAD_DOWN_NODE to another " +
			"client node's name and NOMAD_NODE_DOWN_CMD and NOMAD_NODE_UP_CMD to commands that stop and resume its client " +
			"(for example pkill -STOP and pkill -CONT of its agent's process) to run this test against this Nomad")
	}
	run := func(what, cmd string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %s: %v: %s", what, cmd, err, out)
		}
	}
	isDown, used := false, false
	t.Cleanup(func() {
		if isDown {
			run("NOMAD_NODE_UP_CMD", upCmd)
		}
		if used {
			waitReady(t, name)
		}
	})
	down = func() { run("NOMAD_NODE_DOWN_CMD", downCmd); isDown, used = true, true }
	up = func() { run("NOMAD_NODE_UP_CMD", upCmd); isDown = false }
	return name, down, up
}

// waitReady waits until the Nomad at NOMAD_ADDR shows the node named name
// ready, two minutes at most (failing the test then).
func waitReady(t testing.TB, name string) {
	t.Helper()
	tok := os.Getenv("NOMAD_MANAGEMENT_TOKEN")
	if tok == "" {
		tok = Token()
	}
	c := Client(t, os.Getenv("NOMAD_ADDR"), tok)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		nodes, _, err := c.Nodes().List(nil)
		for _, n := range nodes {
			if err == nil && n.Name == name && n.Status == api.NodeStatusReady {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("node %s not ready 2 minutes after the test brought it up (%v)", name, err)
			return
		}
		time.Sleep(time.Second)
	}
}
