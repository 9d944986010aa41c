package preflight_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/sim"
)

// TestThreePartSecretNamesTheCall: a secret of three dot-separated parts
// (a file name such as nomad.token.txt, a JWT pasted in) is no ACL token
// to Nomad, which parses it as a workload identity's signed JWT on
// GET /v1/agent/self and GET /v1/client/stats and answers 500 with why it
// is none: "failed to parse signed token: …", "missing key ID header", or
// "operation cancelled: no such key … in keyring" after the RPC's "rpc
// error: " (the simulator answers as Nomad 2.0 does:
// TestFidelityNonUUIDSecret). The agent explains each as it does a 403:
// the call Nomad refused and what to check.
func TestThreePartSecretNamesTheCall(t *testing.T) {
	sc := sim.DefaultScenario()
	sc.Tokens = []string{"5f0c3a9e-2b7d-4c1e-9a48-7d2e6b1f0c33"}
	c, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	nodes, _, err := mustClient(t, srv.URL, sc.Tokens[0]).Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	const check = "with the agent's token: check nomad.token or NOMAD_TOKEN, and that its ACL policy grants what deploy/foreshape-acl.hcl does"
	for _, tc := range []struct{ secret, reason string }{
		{"nomad.token.txt", "failed to parse signed token: illegal base64 data at input byte 4"},
		{"e30.e30.e30", "missing key ID header"},
		{"eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.e30.c2ln", `operation cancelled: no such key "abc" in keyring`},
	} {
		nc := mustClient(t, srv.URL, tc.secret)
		_, err := nc.Nodes().Stats(nodes[0].ID, nil)
		want := "rpc error: " + tc.reason + "; Nomad refused GET /v1/client/stats " + check
		if err == nil || !strings.Contains(err.Error(), want) || !preflight.NomadRefused(err) {
			t.Errorf("node stats with secret %q: %v\nwant a refusal saying %q", tc.secret, err, want)
		}
		_, err = nc.Agent().Self()
		want = "ACL token not found or invalid workload identity: " + tc.reason + "; Nomad refused GET /v1/agent/self " + check
		// (nomad/api wraps the self call's error as text: NomadRefused
		// cannot see it.)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("agent self with secret %q: %v\nwant a refusal saying %q", tc.secret, err, want)
		}
	}
}

// mustClient is the agent's Nomad client (its transport explains Nomad's
// refusals) for the Nomad at addr with token.
func mustClient(t *testing.T, addr, token string) *nomadapi.Client {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Enabled = false
	cfg.Server.RetryJoin = []string{"10.0.0.1"}
	cfg.Nomad.Address, cfg.Nomad.Token = addr, config.Secret(token)
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return start.Nomad
}
