package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/internal/realnomad"
)

// TestAgentRefusedTokenOnRealNomad runs the agent against a real Nomad
// with ACLs on (NOMAD_ADDR) with a token Nomad does not know: the cycle's
// error (status) and the agent's log name the call Nomad refused and what
// to check, with Nomad's reason once (Nomad's answer is gzipped, which the
// simulator did not do before), and a submission is refused the same way
// (502) and queues nothing. The agent calls a Nomad with TLS with
// NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY (realnomad.NomadTLS),
// so the refusal is Nomad's ACLs', not its TLS's. It skips on a Nomad
// without ACLs.
func TestAgentRefusedTokenOnRealNomad(t *testing.T) {
	addr := realNomad(t)
	self, _, err := realnomad.Client(t, addr, realnomad.SetupToken(t, addr)).ACLTokens().Self(nil)
	if err != nil {
		t.Fatalf("the token of %s: %v", addr, err)
	}
	if self.AccessorID == "acls-disabled" {
		t.Skipf("the Nomad at NOMAD_ADDR=%s has its ACLs off: this test needs a Nomad that refuses a token", addr)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	unknown := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])

	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "dc.hcl"), []byte(`shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, raftPort := freePort(t), freePort(t)
	cfg := serverConfig("e2e-refused", dir, polDir, addr, httpPort, raftPort, "")
	cfg = strings.Replace(cfg, fmt.Sprintf("  address = %q\n", addr),
		fmt.Sprintf("  address = %q\n  token   = %q\n", addr, unknown)+realnomad.NomadTLS(addr, "  "), 1)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := start(t, "agent", "agent", "-config", cfgPath)
	agentURL := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, agentURL+"/v1/health", 30*time.Second)
	c := &api.Client{Address: agentURL}
	ctx := context.Background()

	const refused = "Permission denied; Nomad refused GET /v1/nodes with the agent's token: check nomad.token or NOMAD_TOKEN, " +
		"and that its ACL policy grants what deploy/foreshape-acl.hcl does"
	var last *api.Cycle
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		st, err := c.Status(ctx)
		if err == nil && st.LastCycle != nil {
			last = st.LastCycle
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cycle within 90 s (last status error %v)\n%s", err, tail(logs.String(), 40))
		}
	}
	if !strings.Contains(last.Error, "403 ("+refused+")") {
		t.Errorf("the cycle's error %q; want it to say %q", last.Error, refused)
	}
	_, err = c.Submit(ctx, api.Submission{Job: "any", Group: "g", Target: "dc1"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadGateway || !strings.Contains(se.Message, refused) ||
		strings.Count(se.Message, "Permission denied") != 1 {
		t.Errorf("a submission: %v; want it refused with 502 and %q", err, refused)
	}
	if q, err := c.Queue(ctx, nil); err != nil || len(q.Requests) != 0 {
		t.Errorf("queue %+v, %v; want nothing queued", q, err)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		// A line about the refusal; a bare "403" also matches a port or an
		// ID that happens to hold it.
		if !strings.Contains(l, "code: 403") && !strings.Contains(l, "Permission denied") {
			continue
		}
		lines++
		if !strings.Contains(l, "Nomad refused GET /v1/") || strings.Count(l, "Permission denied") != 1 || strings.Contains(l, unknown) {
			t.Errorf("log line %q: want the refused call, Nomad's reason once and no secret", l)
		}
	}
	if lines == 0 {
		t.Errorf("the agent logged no refusal:\n%s", tail(logs.String(), 40))
	}
	t.Logf("figures: real Nomad %s refused the agent's unknown token; %d log lines name the call; cycle error: %s", addr, lines, last.Error)
}
