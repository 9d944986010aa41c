package command

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

type stubBackend struct{}

var stubOrigin = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func (stubBackend) Status(context.Context) api.Status {
	yes, no := true, false
	return api.Status{Node: "agent-1", ClusterID: "c0ffee00-1111-4222-8333-444455556666", State: "Leader", IsLeader: true, Leader: "127.0.0.1:7576", Series: 3,
		Peers: []api.Peer{
			{ID: "id-1", Name: "fs-1", Address: "10.0.0.1:7576", HTTPAddress: "10.0.0.1:7575", Suffrage: "voter", Leader: true, Healthy: &yes},
			{ID: "id-2", Name: "fs-2", Address: "10.0.0.2:7576", Suffrage: "nonvoter", Healthy: &no},
		},
		Clients: []api.ClientAgent{{NodeID: "n-7", NodeName: "nomad-client-7", Name: "fs-c7", Reporting: true, LastSeen: stubOrigin}},
		Stale:   []api.StaleSeries{{Series: "node/n3:cpu", Since: stubOrigin, Reason: "client stats unreachable"}},
		Pending: []api.PendingForecast{{Policy: "web", Series: "dc1/web:memory", Status: api.ForecastWarmingUp,
			Note: api.WarmingUpNote(5, 12, stubOrigin.Add(35*time.Minute))}}}
}
func (stubBackend) Policies(context.Context) []api.Policy { return nil }
func (stubBackend) Series(context.Context) []api.Series   { return nil }
func (stubBackend) Anomalies(context.Context) []api.Anomaly {
	return nil
}
func (stubBackend) Hotspots(context.Context) []api.Hotspot {
	return []api.Hotspot{{Policy: "web", Locality: "dc1/web", Metric: "cpu", At: stubOrigin.Add(75 * time.Minute), Probability: 0.93, Quantile: 0.9, Line: 80, Peak: 91.2}}
}
func (stubBackend) Forecasts(context.Context) []api.Forecast {
	line := 80.0
	workload := &api.Workload{Kind: "diurnal", SeasonalStrength: 0.62, Bound: "cpu-bound", IO: "read-heavy",
		From: stubOrigin.Add(-48 * time.Hour), Points: 576}
	f := api.Forecast{Policy: "web", Locality: "dc1/web", Metric: "cpu", Status: api.ForecastReady, Origin: stubOrigin, Step: "5m",
		Model: "auto(ets+theta)", Reason: "lowest validation error", Quantiles: []float64{0.5, 0.9}, PlanningQuantile: 0.9, Line: &line,
		Workload: workload}
	for i := 0; i < 24; i++ {
		f.History = append(f.History, api.Point{Time: stubOrigin.Add(time.Duration(i-24) * 5 * time.Minute), Value: 50 + float64(i)})
	}
	var p50, p90 []float64
	for i := 1; i <= 12; i++ {
		f.Times = append(f.Times, stubOrigin.Add(time.Duration(i)*5*time.Minute))
		f.Mean = append(f.Mean, 74+float64(i))
		p50 = append(p50, 74+float64(i))
		p90 = append(p90, 80+float64(i))
	}
	f.Bands = [][]float64{p50, p90}
	f.Hotspot = &api.Hotspot{At: f.Times[0], Probability: 0.9, Quantile: 0.9, Line: 80, Peak: 92}
	first := stubOrigin.Add(35 * time.Minute)
	warming := api.Forecast{Policy: "web", Locality: "dc1/web", Metric: "memory", Series: "dc1/web:memory",
		Status: api.ForecastWarmingUp, Note: api.WarmingUpNote(5, 12, first), Workload: workload,
		Warmup: &api.Warmup{Points: 5, Needed: 12, FirstForecast: first}}
	// A metric of the policy's forecast.queries: no capacity, no line.
	queue := f
	queue.Metric, queue.Line, queue.Hotspot, queue.Workload = "queue_depth", nil, nil, nil
	return []api.Forecast{f, warming, queue}
}

func stubAgent(t *testing.T) string {
	t.Helper()
	s, err := api.NewServer(stubBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestStatusCommand(t *testing.T) {
	addr := stubAgent(t)
	code, out, errOut := runCLI(t, "status", "-address", addr)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"agent-1", "c0ffee00-1111-4222-8333-444455556666", "Leader", "node/n3:cpu", "client stats unreachable",
		"fs-1", "10.0.0.1:7575", "voter", "fs-2", "nonvoter", "false", "Client agents", "nomad-client-7", "fs-c7",
		"Not forecast", "dc1/web:memory", "warming up: 5 of 12 points, first forecast at 2026-01-01T09:35:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "status", "-address", addr, "-json")
	var st api.Status
	if code != ExitOK || json.Unmarshal([]byte(out), &st) != nil || st.Node != "agent-1" {
		t.Errorf("-json: exit %d, output %q", code, out)
	}
	if code, _, _ := runCLI(t, "status", "extra"); code != ExitUsage {
		t.Errorf("extra argument: exit %d, want %d", code, ExitUsage)
	}
	if code, _, errOut := runCLI(t, "status", "-address", "127.0.0.1:1"); code != ExitInvalid || !strings.Contains(errOut, "error") {
		t.Errorf("unreachable agent: exit %d, stderr %q", code, errOut)
	}
}

func TestForecastShowCommand(t *testing.T) {
	addr := stubAgent(t)
	code, out, errOut := runCLI(t, "forecast", "show", "-address", addr, "-metric", "cpu", "dc1/web")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"auto(ets+theta)", "headroom line 80", "p90 (planning)", "HOTSPOT",
		"workload: diurnal (seasonal strength 0.62), cpu-bound, disks read-heavy; from 576 points since 2025-12-30T09:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A series still warming up says so, and when its first forecast is due.
	code, out, errOut = runCLI(t, "forecast", "show", "-address", addr, "-metric", "memory", "dc1/web")
	if code != ExitOK || !strings.Contains(out, "no forecast yet: warming up: 5 of 12 points, first forecast at 2026-01-01T09:35:00Z") {
		t.Errorf("warming up: exit %d, out:\n%s\nerr %s", code, out, errOut)
	}
	// A metric a policy's forecast.queries name, as -help says.
	code, out, errOut = runCLI(t, "forecast", "show", "-address", addr, "-metric", "queue_depth", "dc1/web")
	if code != ExitOK || !strings.Contains(out, "dc1/web  queue_depth") || strings.Contains(out, "headroom line") {
		t.Errorf("a query's metric: exit %d, out:\n%s\nerr %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "forecast", "show", "-address", addr, "dc9"); code != ExitInvalid || !strings.Contains(errOut, "404") {
		t.Errorf("unknown locality: exit %d, stderr %q", code, errOut)
	}
	// -width and -height are the chart's columns (its axis included) and
	// rows, as -help says (-height 16 drew 17 rows).
	for _, size := range [][2]int{{72, 16}, {30, 5}, {40, 2}} {
		code, out, errOut := runCLI(t, "forecast", "show", "-address", addr, "-width", strconv.Itoa(size[0]), "-height", strconv.Itoa(size[1]), "dc1/web")
		rows, widest := 0, 0
		for _, l := range strings.Split(out, "\n") {
			if _, plot, ok := strings.Cut(l, "┤"); ok {
				rows, widest = rows+1, max(widest, utf8.RuneCountInString(plot)+1)
			} else if _, plot, ok := strings.Cut(l, "┼"); ok {
				rows, widest = rows+1, max(widest, utf8.RuneCountInString(plot)+1)
			}
		}
		if code != ExitOK || rows != size[1] || widest != size[0] {
			t.Errorf("-width %d -height %d: exit %d, a chart of %d rows, %d columns wide; want %d by %d\n%s%s", size[0], size[1], code, rows, widest, size[1], size[0], out, errOut)
		}
	}
	for _, size := range [][]string{{"-width", "-5"}, {"-width", "0"}, {"-width", "1001"}, {"-height", "-1"}, {"-height", "0"}, {"-height", "1"}, {"-height", "201"}} {
		if code, _, errOut := runCLI(t, append([]string{"forecast", "show", "-address", addr}, append(size, "dc1/web")...)...); code != ExitUsage || !strings.Contains(errOut, size[0]+" must be") {
			t.Errorf("%v: exit %d, %q; want a usage error naming the flag", size, code, errOut)
		}
	}
	if code, _, _ := runCLI(t, "forecast", "show", "-address", addr); code != ExitUsage {
		t.Errorf("no locality: exit %d, want %d", code, ExitUsage)
	}
	for _, loc := range []string{"dc1//web", "/dc1", "dc1/"} {
		if code, _, errOut := runCLI(t, "forecast", "show", "-address", addr, loc); code != ExitUsage || !strings.Contains(errOut, "has an empty part") {
			t.Errorf("%q: exit %d, %q; want a usage error", loc, code, errOut)
		}
	}
	// A locality is sent as itself: '#' and '?' are not cut off as a URL's
	// fragment or query (dc1/web#x showed dc1/web).
	for _, loc := range []string{"dc1/web#x", "dc1/web?metric=memory"} {
		if code, out, errOut := runCLI(t, "forecast", "show", "-address", addr, loc); code == ExitOK || !strings.Contains(errOut, loc) {
			t.Errorf("%q: exit %d, %q%q; want an error naming it", loc, code, out, errOut)
		}
	}
}

// TestHotspotsCommand: the table is the one -help shows for the same
// hotspot, column for column.
func TestHotspotsCommand(t *testing.T) {
	addr := stubAgent(t)
	code, out, errOut := runCLI(t, "hotspots", "-address", addr)
	if code != ExitOK {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
	_, example, _ := strings.Cut((&HotspotsCommand{}).Help(), "$ foreshape hotspots\n")
	var want []string
	for _, l := range strings.Split(example, "\n") {
		want = append(want, strings.TrimPrefix(l, "  "))
	}
	if got := strings.TrimRight(out, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("hotspots printed\n%s\nand -help shows\n%s", got, strings.Join(want, "\n"))
	}
}

// TestClientTLSFlagErrors: a TLS flag that cannot be used is named in the
// error, with what is wrong with it.
func TestClientTLSFlagErrors(t *testing.T) {
	addr := stubAgent(t)
	notPEM := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(notPEM, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-ca-cert", missing}, "-ca-cert " + missing + ": no such file or directory"},
		{[]string{"-ca-cert", notPEM}, "-ca-cert " + notPEM + " holds no PEM certificate"},
		{[]string{"-client-cert", notPEM}, "-client-cert is set without -client-key"},
		{[]string{"-client-key", notPEM}, "-client-key is set without -client-cert"},
		{[]string{"-client-cert", notPEM, "-client-key", notPEM}, "-client-cert and -client-key: "},
	} {
		code, _, errOut := runCLI(t, append([]string{"status", "-address", addr}, tc.args...)...)
		if code != ExitInvalid || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// The TLS flags' client is Go's default transport with their settings: a
// bare transport had no proxy from the environment, no HTTP/2 and no dial
// or handshake bound, so an agent that accepted a connection and never
// completed the handshake held a queue watch for its whole wait.
func TestTLSClientKeepsTheDefaultTransport(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := &clientFlags{address: srv.URL, caCert: ca}
	tr, ok := cf.client().HTTP.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", cf.client().HTTP.Transport)
	}
	if tr.Proxy == nil || tr.DialContext == nil || tr.TLSHandshakeTimeout <= 0 || !tr.ForceAttemptHTTP2 || tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs == nil {
		t.Errorf("TLS transport: proxy %v, dial %v, handshake %s, HTTP/2 %v, CA set %v; want the default's with -ca-cert",
			tr.Proxy != nil, tr.DialContext != nil, tr.TLSHandshakeTimeout, tr.ForceAttemptHTTP2, tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil)
	}
}

// TestAPIErrorHints: a refused token and an address nobody answers at
// come with what to do about them, against the agent's own API handler:
// no token, a wrong one, and the right one pasted with its newline (the
// agent trims its token file's lines, so the CLI trims the token).
func TestAPIErrorHints(t *testing.T) {
	denied := actAgent(t, apitest.New(), "s3cret")
	nobody := freeAddr(t)
	for _, tc := range []struct {
		address, token, want string
		code                 int
	}{
		{denied, "", "403 Forbidden: permission denied: no token: this agent has ACLs on; send one of its acl.token_file tokens in X-Foreshape-Token (or Authorization: Bearer)\n" +
			"The agent has ACLs on: set -token, or FORESHAPE_TOKEN, to one of the tokens in the agent's acl.token_file.", ExitInvalid},
		{denied, "secret", "403 Forbidden: permission denied: the token sent is not one of this agent's acl.token_file tokens\n" +
			"The agent did not accept the token from -token (or FORESHAPE_TOKEN): use one of the tokens in its acl.token_file", ExitInvalid},
		{denied, "s3cret\n", "", ExitOK},
		{nobody, "", "no agent answers at " + nobody + " (set -address or FORESHAPE_ADDR)", ExitInvalid},
	} {
		t.Setenv("FORESHAPE_TOKEN", tc.token)
		code, _, errOut := runCLI(t, "queue", "list", "-address", tc.address)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s, token %q: exit %d, %q; want %d and %q", tc.address, tc.token, code, errOut, tc.code, tc.want)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%s, token %q: more than an error and its hint:\n%s", tc.address, tc.token, errOut)
		}
	}
}

// TestBadGatewayHintOnlyForNomadRefusals: a 502 that is not Nomad's
// refusal (a client agent that could not reach the leader's API) is not
// told to be one.
func TestBadGatewayHintOnlyForNomadRefusals(t *testing.T) {
	msg := "forwarding to the leader at 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
	}))
	t.Cleanup(srv.Close)
	code, _, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitInvalid || !strings.Contains(errOut, "502 Bad Gateway: "+msg) || strings.Contains(errOut, "Nomad") {
		t.Errorf("exit %d, stderr %q; want 1, the agent's answer, and no word of Nomad refusing a token", code, errOut)
	}
}

// namedBackend is stubBackend asked of fs-2, a follower of fs-1.
type namedBackend struct{ stubBackend }

func (b namedBackend) Status(ctx context.Context) api.Status {
	st := b.stubBackend.Status(ctx)
	st.Node, st.State, st.IsLeader, st.Leader = "id-2", "Follower", false, "10.0.0.1:7576"
	return st
}

// devBackend is stubBackend asked of a dev agent named vm, whose Raft
// transport is in-process.
type devBackend struct{ stubBackend }

func (b devBackend) Status(ctx context.Context) api.Status {
	st := b.stubBackend.Status(ctx)
	yes := true
	st.Node, st.Leader = "dev-id", agent.InMemoryRaftAddress
	st.Peers = []api.Peer{{ID: "dev-id", Name: "vm", Address: agent.InMemoryRaftAddress, Suffrage: "voter", Leader: true, Healthy: &yes}}
	return st
}

// TestStatusNamesNodeAndLeader: status shows the node and the leader by
// their servers' names beside the Raft ID and address, which alone do not
// say which host they are.
func TestStatusNamesNodeAndLeader(t *testing.T) {
	s, err := api.NewServer(namedBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, re := range []string{`(?m)^Node\s+fs-2 \(id-2\)$`, `(?m)^Leader\s+fs-1 \(10\.0\.0\.1:7576\)$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	// A dev agent's leader has no address to dial: "vm (in-memory, dev)".
	dev, err := api.NewServer(devBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	devSrv := httptest.NewServer(dev)
	defer devSrv.Close()
	if _, out, _ := runCLI(t, "status", "-address", devSrv.URL); !regexp.MustCompile(`(?m)^Leader\s+vm \(in-memory, dev\)$`).MatchString(out) {
		t.Errorf("dev status: want Leader  vm (in-memory, dev):\n%s", out)
	}
	// The stub's own answer names no peer by its node or leader: as it was.
	if _, out, _ := runCLI(t, "status", "-address", stubAgent(t)); !regexp.MustCompile(`(?m)^Node\s+agent-1$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^Leader\s+127\.0\.0\.1:7576$`).MatchString(out) {
		t.Errorf("stub status:\n%s", out)
	}
}

func TestWithDefaultPort(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":                     "127.0.0.1:7575",
		"agent-1":                       "agent-1:7575",
		"::1":                           "[::1]:7575",
		"[::1]":                         "[::1]:7575",
		"127.0.0.1:8080":                "127.0.0.1:8080",
		"http://127.0.0.1":              "http://127.0.0.1",
		"https://foreshape.example.com": "https://foreshape.example.com",
		"":                              "",
	} {
		if got := withDefaultPort(in); got != want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// An -address the client could not send a request to is a usage error
// (exit 2) naming the flag; it was a failed request (exit 1).
func TestBadAddressIsAUsageError(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "http://[::1", "ftp://agent", "", "http://", "127.0.0.1:"} {
		code, _, errOut := runCLI(t, "status", "-address", addr)
		if code != ExitUsage || !strings.Contains(errOut, "for flag -address") {
			t.Errorf("-address %q: exit %d, %q; want a usage error naming the flag", addr, code, errOut)
		}
	}
	addr := stubAgent(t)
	for _, good := range []string{addr, strings.TrimPrefix(addr, "http://")} {
		if code, _, errOut := runCLI(t, "status", "-address", good); code != ExitOK {
			t.Errorf("-address %q: exit %d, %s", good, code, errOut)
		}
	}
}
