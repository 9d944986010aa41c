package sim_test

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/sim"
)

// TestFidelityACLRefusal: with its ACLs on, Nomad refuses every call
// foreshape makes when the token is one it does not know, and when there
// is none (the anonymous token, which has no policy): 403 and the plain
// text "Permission denied", nothing more, gzipped for a client that
// accepts it, as nomad/api does. /v1/status/leader, /v1/status/peers,
// /v1/regions and /v1/metrics answer without a token or with one Nomad
// does not know. With a token it knows (the
// scenario's; on the real Nomad a management token) the same reads
// answer. The real half needs a Nomad with ACLs on (a dev agent with
// acl { enabled = true }, bootstrapped) and skips on one without.
func TestFidelityACLRefusal(t *testing.T) {
	forEachACLNomad(t, checkACLRefusal)
}

// forEachACLNomad runs check against the simulator with ACLs on (its
// scenario's token) and, when NOMAD_ADDR is set, against that Nomad if its
// ACLs are on (with the set-up's management token).
func forEachACLNomad(t *testing.T, check func(t *testing.T, addr, token string)) {
	t.Run("sim", func(t *testing.T) {
		const token = "fidelity-secret"
		check(t, startACLSim(t, fmt.Sprintf("acl {\n  tokens = [%q]\n}\n", token)), token)
	})
	t.Run("nomad", func(t *testing.T) {
		addr, token := aclNomad(t)
		check(t, addr, token)
	})
}

// startACLSim runs the simulator on the fidelity scenario with its acl
// block acl and returns its address.
func startACLSim(t *testing.T, acl string) string {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(fidelityScenario+"\n"+acl), "fidelity.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sc, sim.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logWriter{t}, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, simSpeed) }()
	t.Cleanup(func() { cancel(); <-done })
	return url
}

// aclNomad is the Nomad at NOMAD_ADDR and the set-up's management token;
// it skips the test when NOMAD_ADDR is unset or that Nomad's ACLs are off.
func aclNomad(t *testing.T) (addr, token string) {
	t.Helper()
	addr = os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR is not set: checked against the simulator only. Set it to a Nomad dev agent with ACLs on " +
			"(and NOMAD_MANAGEMENT_TOKEN to its bootstrap token) to check the simulator's answers against a real Nomad.")
	}
	token = realnomad.SetupToken(t, addr)
	self, _, err := realnomad.Client(t, addr, token).ACLTokens().Self(nil)
	if err != nil {
		t.Fatalf("the token of %s: %v", addr, err)
	}
	if self.AccessorID == "acls-disabled" {
		t.Skipf("the Nomad at NOMAD_ADDR=%s has its ACLs off: checked against the simulator only.", addr)
	}
	return addr, token
}

// checkACLRefusal makes foreshape's calls against the Nomad at addr with an
// unknown token and with none, and the reads with token.
func checkACLRefusal(t *testing.T, addr, token string) {
	nodes, _, err := realnomad.Client(t, addr, token).Nodes().List(nil)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("nodes of %s with the token: %v %v", addr, nodes, err)
	}
	node := nodes[0].ID
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	unknown := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	job := `{"Job":{"ID":"fidelity-acl","Name":"fidelity-acl","Type":"service","Datacenters":["dc1"],"TaskGroups":[` + sleepGroup + `]}}`
	do := func(method, path, body, tok string) (int, string, string) {
		t.Helper()
		return call(t, addr, method, path, body, tok)
	}
	for _, c := range aclCalls(node, job) {
		for _, tok := range []struct{ name, secret string }{{"an unknown token", unknown}, {"no token", ""}} {
			if tok.secret == "" && !c.anonymous {
				continue
			}
			code, ctype, body := do(c.method, c.path, c.body, tok.secret)
			if code != http.StatusForbidden || ctype != "text/plain; charset=utf-8" || body != "Permission denied (gzip)" {
				t.Errorf("%s %s with %s: %d %q %q; want 403 text/plain %q", c.method, c.path, tok.name, code, ctype, body, "Permission denied (gzip)")
			}
		}
	}
	// A client that does not accept gzip gets the text as it is.
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, err := http.NewRequest("GET", addr+"/v1/nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Nomad-Token", unknown)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Encoding") != "" || string(got) != "Permission denied" {
		t.Errorf("GET /v1/nodes with an unknown token, not accepting gzip: %d %q %q; want 403 %q uncompressed",
			resp.StatusCode, resp.Header.Get("Content-Encoding"), got, "Permission denied")
	}
	for _, path := range []string{"/v1/status/leader", "/v1/status/peers", "/v1/regions", "/v1/metrics"} {
		for _, tok := range []string{unknown, ""} {
			if code, _, body := do("GET", path, "", tok); code != http.StatusOK {
				t.Errorf("GET %s with token %q: %d %q; want 200 (Nomad asks no token for it)", path, tok, code, body)
			}
		}
	}
	for _, path := range []string{"/v1/nodes", "/v1/node/" + node, "/v1/allocations", "/v1/jobs", "/v1/agent/self"} {
		if code, _, body := do("GET", path, "", token); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %q; want 200", path, code, body)
		}
	}
}

// TestFidelityNonUUIDSecret: a secret that is no UUID (a mistyped
// nomad.token, a file's name) is no ACL token to Nomad, which tries it as a
// workload identity, a signed JWT, where a call authenticates it so:
// /v1/agent/self answers 500 "ACL token not found or invalid workload
// identity: REASON" and /v1/client/stats 500 "rpc error: REASON"
// (gzipped, as every answer); foreshape's other calls are refused as for
// an unknown token, 403 "Permission denied". REASON is go-jose's, parsing
// the secret as a compact JWS ("failed to parse signed token: …": not
// three dot-separated parts, a part that is no base64url, a header that
// is no JSON object or whose key ID is no string), else Nomad's: "missing
// key ID header", or for a key ID it has no key of, "operation cancelled:
// no such key "KID" in keyring". The real half needs a Nomad with ACLs on.
func TestFidelityNonUUIDSecret(t *testing.T) {
	forEachACLNomad(t, func(t *testing.T, addr, token string) {
		nodes, _, err := realnomad.Client(t, addr, token).Nodes().List(nil)
		if err != nil || len(nodes) == 0 {
			t.Fatalf("nodes of %s with the token: %v %v", addr, nodes, err)
		}
		const parse = "failed to parse signed token: "
		job := `{"Job":{"ID":"fidelity-acl","Name":"fidelity-acl","Type":"service","Datacenters":["dc1"],"TaskGroups":[` + sleepGroup + `]}}`
		// A ready node: Nomad refuses a down node's client stats 403
		// before it reads the secret (measured on 6646 with a dc2 client
		// stopped).
		node := readyNode(nodes)
		for _, s := range []struct{ secret, reason string }{
			{"not-a-token", parse + "go-jose/go-jose: compact JWS format must have three parts"},
			{"/etc/foreshape/nomad-token", parse + "go-jose/go-jose: compact JWS format must have three parts"},
			{"a.b.c.d", parse + "go-jose/go-jose: compact JWS format must have three parts"},
			{"a.b.c", parse + "illegal base64 data at input byte 0"},
			{"nomad.token.txt", parse + "illegal base64 data at input byte 4"},
			{"e30.a.b", parse + "illegal base64 data at input byte 0"},
			{"abc.def.ghi", parse + "invalid character 'i' looking for beginning of value"},
			{"NQ.e30.c2ln", parse + "json: cannot unmarshal number into Go value of type jose.rawHeader"}, // header 5
			{"eyJraWQiOjF9.e30.c2ln", parse + `failed to unmarshal key ID: json: cannot unmarshal number into Go value of type string: "1"`},
			{"e30.e30.e30", "missing key ID header"}, // header {}
			{"e30=.e30.", "missing key ID header"},
			{"..", "missing key ID header"},
			// header {"alg":"RS256","kid":"abc"}
			{"eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.e30.c2ln", `operation cancelled: no such key "abc" in keyring`},
		} {
			for _, c := range aclCalls(node, job) {
				want, wantBody := http.StatusForbidden, "Permission denied (gzip)"
				switch c.path {
				case "/v1/agent/self":
					want, wantBody = http.StatusInternalServerError, "ACL token not found or invalid workload identity: "+s.reason+" (gzip)"
				case "/v1/client/stats?node_id=" + node:
					want, wantBody = http.StatusInternalServerError, "rpc error: "+s.reason+" (gzip)"
				}
				code, ctype, body := call(t, addr, c.method, c.path, c.body, s.secret)
				if code != want || ctype != "text/plain; charset=utf-8" || body != wantBody {
					t.Errorf("%s %s with secret %q: %d %q %q; want %d text/plain %q", c.method, c.path, s.secret, code, ctype, body, want, wantBody)
				}
			}
		}
	})
}

// aclCall is one of foreshape's calls to Nomad, on node and the job whose
// registration body is job.
type aclCall struct {
	method, path, body string
	// anonymous: Nomad refuses the call without a token too (it looks
	// an unknown allocation up first, and answers 404 for it).
	anonymous bool
}

// aclCalls are the calls foreshape makes, on node and job.
func aclCalls(node, job string) []aclCall {
	const zero = "00000000-0000-0000-0000-000000000000"
	return []aclCall{
		{"GET", "/v1/nodes", "", true},
		{"GET", "/v1/node/" + node, "", true},
		{"GET", "/v1/node/" + node + "/allocations", "", true},
		{"POST", "/v1/node/" + node + "/eligibility", `{"NodeID":"` + node + `","Eligibility":"eligible"}`, true},
		{"POST", "/v1/node/" + node + "/drain", `{"NodeID":"` + node + `"}`, true},
		{"GET", "/v1/client/stats?node_id=" + node, "", true},
		{"GET", "/v1/allocations", "", true},
		{"GET", "/v1/jobs", "", true},
		{"PUT", "/v1/jobs", job, true},
		{"GET", "/v1/job/fidelity-acl", "", true},
		{"DELETE", "/v1/job/fidelity-acl", "", true},
		{"GET", "/v1/job/fidelity-acl/allocations", "", true},
		{"GET", "/v1/job/fidelity-acl/deployment", "", true},
		{"GET", "/v1/job/fidelity-acl/scale", "", true},
		{"POST", "/v1/job/fidelity-acl/scale", `{"Count":1,"Target":{"Group":"g"}}`, true},
		{"GET", "/v1/deployment/" + zero, "", true},
		{"GET", "/v1/evaluation/" + zero, "", true},
		{"GET", "/v1/agent/self", "", true},
		{"POST", "/v1/allocation/" + zero + "/stop", "", false},
		{"GET", "/v1/allocation/" + zero, "", false},
		{"GET", "/v1/client/allocation/" + zero + "/stats", "", false},
	}
}

// call makes a call as nomad/api does, accepting gzip, and returns its
// status, content type and body, saying "(gzip)" after a compressed one.
func call(t *testing.T, addr, method, path, body, tok string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Nomad-Token", tok)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	gz := resp.Header.Get("Content-Encoding") == "gzip"
	if gz {
		if r, err = gzip.NewReader(resp.Body); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	got, _ := io.ReadAll(r)
	if gz {
		got = append(got, " (gzip)"...)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(got)
}

// TestFidelityAnonymousToken: a request without a token (Nomad's
// anonymous token, which has no policy) is refused as an unknown token is,
// except where Nomad looks something up first. Reading, stopping an
// allocation or its client stats: one that does not exist answers as
// without ACLs (404 in the call's own words; an ID that is no UUID, the
// lookup's failure); one that exists is hidden from a read (500 "Unknown
// allocation", as for a token without read-job) and refused for the
// others (403). Listing node pools answers 200 and an empty list (the
// anonymous token may list them and sees none); an unknown token is
// refused it.
func TestFidelityAnonymousToken(t *testing.T) {
	forEachACLNomad(t, func(t *testing.T, addr, token string) {
		c := realnomad.Client(t, addr, token)
		j := sleepJob("fidelity-anon", 1, 50, 32, 50)
		if _, _, err := c.Jobs().Register(j, nil); err != nil {
			t.Fatalf("register %s: %v", *j.ID, err)
		}
		t.Cleanup(func() { _, _, _ = c.Jobs().Deregister(*j.ID, true, nil) })
		var alloc string
		deadline := time.Now().Add(waitLimit)
		for alloc == "" {
			allocs, _, err := c.Jobs().Allocations(*j.ID, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(allocs) > 0 {
				alloc = allocs[0].ID
			} else if time.Now().After(deadline) {
				t.Fatalf("no allocation of %s", *j.ID)
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
		const zero = "00000000-0000-0000-0000-000000000000"
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		unknown := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		const lookup = "alloc lookup failed: index error: UUID must be 36 characters"
		for _, tc := range []struct {
			method, path, tok string
			code              int
			body              string
		}{
			{"GET", "/v1/allocation/" + zero, "", 404, "alloc not found"},
			{"POST", "/v1/allocation/" + zero + "/stop", "", 404, "allocation not found"},
			{"PUT", "/v1/allocation/" + zero + "/stop", "", 404, "allocation not found"},
			{"GET", "/v1/client/allocation/" + zero + "/stats", "", 404, `Unknown allocation "` + zero + `"`},
			{"GET", "/v1/allocation/abc", "", 500, lookup},
			{"POST", "/v1/allocation/abc/stop", "", 500, lookup},
			{"GET", "/v1/allocation/" + alloc, "", 500, `Unknown allocation "` + alloc + `"`},
			{"POST", "/v1/allocation/" + alloc + "/stop", "", 403, "Permission denied"},
			{"GET", "/v1/client/allocation/" + alloc + "/stats", "", 403, "Permission denied"},
			{"GET", "/v1/allocation/" + zero, unknown, 403, "Permission denied"},
			{"GET", "/v1/allocation/" + alloc, unknown, 403, "Permission denied"},
			{"GET", "/v1/node/pools", "", 200, "[]"},
			{"GET", "/v1/node/pools", unknown, 403, "Permission denied"},
			{"GET", "/v1/node/pool/default", "", 403, "Permission denied"},
		} {
			code, _, body := call(t, addr, tc.method, tc.path, "", tc.tok)
			body = strings.TrimSpace(strings.TrimSuffix(body, " (gzip)"))
			who := "no token"
			if tc.tok != "" {
				who = "an unknown token"
			}
			if code != tc.code || body != tc.body {
				t.Errorf("%s %s with %s: %d %q; want %d %q", tc.method, tc.path, who, code, body, tc.code, tc.body)
			}
		}
		if a, _, err := c.Allocations().Info(alloc, nil); err != nil || a.DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("allocation %s after the refused stop: %+v, %v; want it still to run", alloc, a, err)
		}
		if pools, _, err := c.NodePools().List(nil); err != nil || len(pools) < 2 {
			t.Errorf("node pools with the token: %v, %v; want all and default at least", pools, err)
		}
	})
}

// TestFidelityBearerScheme: the token may come in "Authorization: <scheme>
// <token>", the scheme "Bearer" in any case (Nomad lowercases it); another
// scheme carries no token.
func TestFidelityBearerScheme(t *testing.T) {
	forEachACLNomad(t, func(t *testing.T, addr, token string) {
		for header, want := range map[string]int{"Bearer " + token: 200, "bearer " + token: 200, "BEARER " + token: 200,
			"Basic " + token: 403} {
			req, err := http.NewRequest(http.MethodGet, addr+"/v1/nodes", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if scheme, _, _ := strings.Cut(header, " "); resp.StatusCode != want {
				t.Errorf("Authorization: %s <token>: %d, want %d", scheme, resp.StatusCode, want)
			}
		}
	})
}
