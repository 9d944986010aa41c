package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/sim"
)

// metricSet is a scrape (or a registry's gathering) by metric name.
type metricSet map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, r io.Reader) metricSet {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// scrapeURL GETs an agent's /v1/metrics at addr (host:port).
func scrapeURL(t *testing.T, addr string) metricSet {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s/v1/metrics: %d %s", addr, resp.StatusCode, b)
	}
	return parseMetrics(t, resp.Body)
}

// scrapeHandler GETs /v1/metrics from h.
func scrapeHandler(t *testing.T, h http.Handler) metricSet {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/metrics: %d %s", rec.Code, rec.Body)
	}
	return parseMetrics(t, rec.Body)
}

func gatherSet(t *testing.T, g prometheus.Gatherer) metricSet {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := metricSet{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// value is the metric name's value with the labels given as name, value
// pairs; ok is false when there is none.
func (m metricSet) value(name string, labels ...string) (float64, bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, mt := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range mt.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case mt.Gauge != nil:
			return mt.GetGauge().GetValue(), true
		case mt.Counter != nil:
			return mt.GetCounter().GetValue(), true
		case mt.Untyped != nil:
			return mt.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// get is value, -1 when absent.
func (m metricSet) get(name string, labels ...string) float64 {
	if v, ok := m.value(name, labels...); ok {
		return v
	}
	return -1
}

// documentedMetric is a row of docs/telemetry.md's metric tables.
type documentedMetric struct {
	typ    string
	labels []string
	client bool // "client agents" in its served-by column
}

func readTelemetryDoc(t *testing.T) (string, map[string]documentedMetric) {
	t.Helper()
	b, err := os.ReadFile("../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(foreshape_[a-z_]+)` \\| ([a-z]+) \\| ([^|]*) \\| ([^|]*) \\|")
	paren := regexp.MustCompile(`\([^)]*\)`)
	quoted := regexp.MustCompile("`([a-z_]+)`")
	out := map[string]documentedMetric{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/telemetry.md describes %s twice", m[1])
		}
		d := documentedMetric{typ: m[2], client: strings.Contains(m[4], "client agents")}
		for _, l := range quoted.FindAllStringSubmatch(paren.ReplaceAllString(m[3], ""), -1) {
			d.labels = append(d.labels, l[1])
		}
		slices.Sort(d.labels)
		out[m[1]] = d
	}
	return string(b), out
}

// registeredMetrics are the metrics reg registers, with their label
// names, from their descriptions: those of vectors with no child yet and
// of collectors that export nothing now included.
func registeredMetrics(t *testing.T, reg *prometheus.Registry) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		m := desc.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		slices.Sort(labels)
		out[m[1]] = labels
	}
	return out
}

// TestTelemetryDocumented: docs/telemetry.md's tables describe every
// foreshape_* metric a server and a client agent register, with its type
// (for those the registry holds a value of) and its labels, and which kind
// of agent serves it; every metric the page names exists; the rest of what
// the agents register is the Go runtime's and the process's, which the page
// names by their prefixes; the histograms' buckets, the series store's
// bound and queue.keep_finished's default are as the page gives them.
func TestTelemetryDocumented(t *testing.T) {
	cfg := config.DevDefault()
	cfg.Name = "telemetry-doc"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	a, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ccfg, _ := lonelyClientConfig(t, "telemetry-doc-client")
	c, err := NewClient(ccfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	text, doc := readTelemetryDoc(t)
	if len(doc) < 30 {
		t.Fatalf("docs/telemetry.md's tables describe %d metrics: the scan is broken", len(doc))
	}
	server, client := registeredMetrics(t, a.registry), registeredMetrics(t, c.registry)
	types := map[string]string{}
	for _, reg := range []*prometheus.Registry{a.registry, c.registry} {
		for name, f := range gatherSet(t, reg) {
			types[name] = strings.ToLower(f.GetType().String())
		}
	}
	typed := 0
	for kind, reg := range map[string]map[string][]string{"server": server, "client agent": client} {
		for name, labels := range reg {
			if !strings.HasPrefix(name, "foreshape_") {
				if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
					t.Errorf("a %s registers %s, neither foreshape's nor the Go runtime's or the process's", kind, name)
				}
				continue
			}
			d, ok := doc[name]
			if !ok {
				t.Errorf("a %s registers %s, which docs/telemetry.md's tables do not describe", kind, name)
				continue
			}
			if !slices.Equal(d.labels, labels) {
				t.Errorf("%s: docs/telemetry.md gives the labels %v; a %s registers it with %v", name, d.labels, kind, labels)
			}
			if d.client != (kind == "client agent") {
				t.Errorf("%s is registered by a %s; docs/telemetry.md says it is served by a client agent: %v", name, kind, d.client)
			}
			if typ, ok := types[name]; ok {
				typed++
				if typ != d.typ {
					t.Errorf("%s is a %s; docs/telemetry.md says %s", name, typ, d.typ)
				}
			}
		}
	}
	if typed < 25 {
		t.Errorf("checked the type of %d metrics only", typed)
	}
	for name := range doc {
		if _, ok := server[name]; !ok {
			if _, ok := client[name]; !ok {
				t.Errorf("docs/telemetry.md describes %s, which no agent registers", name)
			}
		}
	}
	// Every metric name the page mentions anywhere exists.
	for _, m := range regexp.MustCompile("`((?:foreshape|go|process)_[a-z_]+)`").FindAllStringSubmatch(text, -1) {
		name := m[1]
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if _, ok := server[name]; ok {
			continue
		}
		if _, ok := server[base]; ok && types[base] == "histogram" {
			continue
		}
		if _, ok := client[name]; ok {
			continue
		}
		t.Errorf("docs/telemetry.md names %s, which no agent registers", name)
	}
	for _, prefix := range []string{"`go_*`", "`process_*`"} {
		if !strings.Contains(text, prefix) {
			t.Errorf("docs/telemetry.md does not name the %s metrics", prefix)
		}
	}

	// The figures the tables give: the histograms' buckets, the series
	// store's bound and how long finished requests stay.
	all := gatherSet(t, a.registry)
	for _, name := range []string{"foreshape_cycle_duration_seconds", "foreshape_move_duration_seconds"} {
		f := all[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("%s: no histogram gathered", name)
			continue
		}
		b := f.GetMetric()[0].GetHistogram().GetBucket()
		low, high := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound()
		var got string
		switch {
		case low < 1:
			got = fmt.Sprintf("(buckets %.0f ms to %.0f s)", low*1000, high)
		default:
			got = fmt.Sprintf("(buckets %.0f s to %.1f h)", low, high/3600)
		}
		if !strings.Contains(text, got) {
			t.Errorf("docs/telemetry.md does not give %s's buckets as they are: %s", name, got)
		}
	}
	n := collect.DefaultMaxSeries
	for _, want := range []string{fmt.Sprintf("(%d,%03d series, which no setting changes)", n/1000, n%1000),
		fmt.Sprintf("`queue.keep_finished` (%.0f h by default)", config.DefaultKeepFinished.Hours())} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("docs/telemetry.md does not say %s", want)
		}
	}
}

// fakeServer is a server state for serverCollector.
type fakeServer struct {
	st      cluster.Status
	err     error
	dataDir error
}

func (f fakeServer) Status() (cluster.Status, error) { return f.st, f.err }
func (f fakeServer) DataDirError() error             { return f.dataDir }

// TestServerCollector: the server gauges read, at each scrape, what the
// Raft node, the disk, the act half and the series store say.
func TestServerCollector(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	three := []cluster.Server{{ID: "a", Voter: true, Leader: true}, {ID: "b", Voter: true}, {ID: "c", Voter: true}, {ID: "d"}}
	infos := []state.Info{{Stale: true}, {}, {}}
	for _, tc := range []struct {
		name      string
		node      fakeServer
		notActing string
		want      map[string]float64 // -1: absent
	}{
		{"leader", fakeServer{st: cluster.Status{State: "Leader", LeaderID: "a", Term: 4, LastIndex: 90, CommitIndex: 88, AppliedIndex: 87, Servers: three}},
			"", map[string]float64{"foreshape_leader": 1, "foreshape_raft_leader_known": 1, "foreshape_raft_term": 4, "foreshape_raft_last_index": 90,
				"foreshape_raft_commit_index": 88, "foreshape_raft_applied_index": 87, "foreshape_raft_last_contact_seconds": 0,
				"voter": 3, "nonvoter": 1, "foreshape_state_halted": 0, "foreshape_data_dir_failing": 0, "foreshape_act_failing": 0,
				"foreshape_cluster_superseded": 0, "foreshape_series": 3, "foreshape_series_stale": 1}},
		{"follower", fakeServer{st: cluster.Status{State: "Follower", LeaderID: "a", LastContact: now.Add(-1500 * time.Millisecond), Servers: three}},
			"", map[string]float64{"foreshape_leader": 0, "foreshape_raft_leader_known": 1, "foreshape_raft_last_contact_seconds": 1.5}},
		{"follower that never heard from a leader", fakeServer{st: cluster.Status{State: "Candidate"}},
			"", map[string]float64{"foreshape_leader": 0, "foreshape_raft_leader_known": 0, "foreshape_raft_last_contact_seconds": -1, "voter": 0}},
		{"raft shutting down", fakeServer{st: cluster.Status{State: "Shutdown"}, err: errors.New("raft is shutdown")},
			"", map[string]float64{"foreshape_leader": 0, "voter": -1, "nonvoter": -1}},
		{"halted", fakeServer{st: cluster.Status{State: "Follower", Halted: "older build"}},
			"", map[string]float64{"foreshape_state_halted": 1}},
		{"superseded", fakeServer{st: cluster.Status{State: "Follower", Superseded: "this server's cluster was recovered as another"}},
			"", map[string]float64{"foreshape_cluster_superseded": 1, "foreshape_leader": 0}},
		{"data_dir failing", fakeServer{st: cluster.Status{State: "Leader"}, dataDir: errors.New("no space left on device")},
			"", map[string]float64{"foreshape_data_dir_failing": 1}},
		{"act half failing", fakeServer{st: cluster.Status{State: "Leader"}},
			"the plan and act pass fails", map[string]float64{"foreshape_act_failing": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(&serverCollector{node: tc.node, series: func() []state.Info { return infos },
				now: func() time.Time { return now }, notActing: func() string { return tc.notActing }})
			m := gatherSet(t, reg)
			for name, want := range tc.want {
				var got float64
				switch name {
				case "voter", "nonvoter":
					got = m.get("foreshape_raft_servers", "suffrage", name)
				default:
					got = m.get(name)
				}
				if got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestServerMetricsMove: a dev agent's new gauges and counters move as
// docs/telemetry.md says: a leader with one voter whose cycles are ok and
// whose Nomad source is up; with every Nomad request failing, the source
// is down, error cycles count up, the last success stands still, series
// go stale and the act half fails; once Nomad answers, all come back; when
// its leadership ends, the sources' state is withdrawn.
func TestServerMetricsMove(t *testing.T) {
	t.Parallel()
	d := startScenario(t, webScenario(t), 600)
	a := leaderByHand(t, d, "metrics-move")
	termCtx, endTerm := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.leaderLoop(termCtx)
	}()
	stopTerm := sync.OnceFunc(func() {
		endTerm()
		<-done
	})
	defer stopTerm()
	scrape := func() metricSet { return scrapeHandler(t, a.api) }

	var m metricSet
	eventually(t, 30*time.Second, "two ok cycles with Nomad up", func() bool {
		m = scrape()
		return m.get("foreshape_cycles_total", "outcome", "ok") >= 2 && m.get("foreshape_source_up", "source", "nomad") == 1
	})
	for name, want := range map[string]float64{"foreshape_leader": 1, "foreshape_raft_leader_known": 1, "foreshape_data_dir_failing": 0,
		"foreshape_state_halted": 0, "foreshape_act_failing": 0, "foreshape_raft_last_contact_seconds": 0} {
		if got := m.get(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if v, nv := m.get("foreshape_raft_servers", "suffrage", "voter"), m.get("foreshape_raft_servers", "suffrage", "nonvoter"); v != 1 || nv != 0 {
		t.Errorf("foreshape_raft_servers: %v voters, %v non-voters; want the dev agent alone", v, nv)
	}
	if ci, ai := m.get("foreshape_raft_commit_index"), m.get("foreshape_raft_applied_index"); ai < 1 || ci < ai || m.get("foreshape_raft_last_index") < ci {
		t.Errorf("raft indexes: last %v, commit %v, applied %v", m.get("foreshape_raft_last_index"), ci, ai)
	}
	if m.get("foreshape_series") < 1 {
		t.Errorf("foreshape_series = %v after two cycles", m.get("foreshape_series"))
	}
	if got, ok := m.value("foreshape_cycles_total", "outcome", "error"); !ok || got != 0 {
		t.Errorf("foreshape_cycles_total{outcome=\"error\"} = %v (present %v); want 0, present from the start", got, ok)
	}
	last := m.get("foreshape_cycle_last_success_timestamp_seconds")
	if age := time.Since(time.Unix(0, int64(last*1e9))); age < 0 || age > 10*time.Second {
		t.Errorf("foreshape_cycle_last_success_timestamp_seconds is %v old", age)
	}

	// Nomad answers every request with a 500.
	if err := d.Cluster.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	errors0 := m.get("foreshape_cycles_total", "outcome", "error")
	eventually(t, 30*time.Second, "the Nomad source down, error cycles and stale series", func() bool {
		m = scrape()
		return m.get("foreshape_source_up", "source", "nomad") == 0 && m.get("foreshape_cycles_total", "outcome", "error") >= errors0+2 &&
			m.get("foreshape_series_stale") > 0
	})
	failedSince := m.get("foreshape_cycle_last_success_timestamp_seconds")
	eventually(t, 30*time.Second, "the act half failing", func() bool {
		m = scrape()
		return m.get("foreshape_act_failing") == 1
	})
	if got := m.get("foreshape_cycle_last_success_timestamp_seconds"); got != failedSince {
		t.Errorf("the last success moved from %v to %v while every cycle failed", failedSince, got)
	}

	// Nomad answers again.
	if err := d.Cluster.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Nomad source up, a new success, the act half acting", func() bool {
		m = scrape()
		return m.get("foreshape_source_up", "source", "nomad") == 1 && m.get("foreshape_cycle_last_success_timestamp_seconds") > failedSince &&
			m.get("foreshape_act_failing") == 0
	})

	// The leadership term ends: the sources' state is withdrawn, the last
	// success stays.
	stopTerm()
	m = scrape()
	if _, ok := m.value("foreshape_source_up"); ok {
		t.Error("foreshape_source_up still served after leadership ended")
	}
	if m.get("foreshape_cycle_last_success_timestamp_seconds") <= failedSince {
		t.Error("the last success was reset when leadership ended")
	}
}

// TestClusterMetrics: of three servers exactly one serves
// foreshape_leader 1, each counts three voters, the followers heard from
// the leader within a second; a client agent serves its own reports, not
// the leader's metrics; when the leader stops, one of the other two leads
// in a later term.
func TestClusterMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers and a client agent")
	}
	t.Parallel()
	tc := newTestCluster(t, 600)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	leaders := func(skip int) (sum float64, terms []float64, contact []float64, voters []float64) {
		for i, s := range tc.servers {
			if i == skip {
				continue
			}
			m := scrapeURL(t, s.a.HTTPAddr())
			sum += m.get("foreshape_leader")
			terms = append(terms, m.get("foreshape_raft_term"))
			voters = append(voters, m.get("foreshape_raft_servers", "suffrage", "voter"))
			if m.get("foreshape_leader") == 0 {
				contact = append(contact, m.get("foreshape_raft_last_contact_seconds"))
			}
		}
		return sum, terms, contact, voters
	}
	var (
		sum                    float64
		terms, contact, voters []float64
	)
	eventually(t, 30*time.Second, "one leader, three voters, the followers in contact", func() bool {
		sum, terms, contact, voters = leaders(-1)
		return sum == 1 && len(contact) == 2 && slices.Max(contact) >= 0 && slices.Max(contact) < 1 &&
			slices.Min(voters) == 3 && slices.Max(voters) == 3
	})
	t.Logf("followers' last contact: %v s", contact)
	term := slices.Max(terms)

	c := tc.startClientOnANode("client-a")
	var cm metricSet
	eventually(t, 30*time.Second, "the client agent's reports taken", func() bool {
		cm = scrapeURL(t, c.HTTPAddr())
		return cm.get("foreshape_client_reports_total", "outcome", "ok") >= 1
	})
	if at := cm.get("foreshape_client_last_report_timestamp_seconds"); time.Since(time.Unix(0, int64(at*1e9))) > time.Minute {
		t.Errorf("foreshape_client_last_report_timestamp_seconds = %v, not the last report's time", at)
	}
	for name := range cm {
		if strings.HasPrefix(name, "foreshape_") && !strings.HasPrefix(name, "foreshape_client_") {
			t.Errorf("the client agent serves %s, a server's metric", name)
		}
	}

	tc.servers[l].stop()
	eventually(t, 30*time.Second, "one leader of the other two, in a later term", func() bool {
		sum, terms, _, _ = leaders(l)
		return sum == 1 && slices.Min(terms) > term
	})
	// The one that serves foreshape_leader 1 is the one that leads. Under
	// load the two may elect again between a look at who leads and the
	// scrape (a fixed pick of the first leader seen failed so once), so
	// both are read again until they agree, or the metric lags for good.
	eventually(t, 10*time.Second, "the server that leads serving foreshape_leader 1", func() bool {
		return scrapeURL(t, tc.servers[tc.leader(l)].a.HTTPAddr()).get("foreshape_leader") == 1
	})
}

// TestClientAgentMetrics: a client agent answers /v1/metrics itself, with
// its token check, its own reports (failed, with no server to take them)
// and the Go and process metrics; with telemetry.prometheus_metrics =
// false it answers 404.
func TestClientAgentMetrics(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			cfg, _ := lonelyClientConfig(t, "metrics-client")
			cfg.Telemetry.PrometheusMetrics = on
			c, _ := runClient(t, cfg)
			send := func(method, token string) *http.Response {
				req, _ := http.NewRequest(method, "http://"+c.HTTPAddr()+"/v1/metrics", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			get := func(token string) *http.Response { return send("GET", token) }
			resp := get("")
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("without a token: %d, want 403", resp.StatusCode)
			}
			// Any other method is a 405 naming the two it answers.
			resp = send("POST", "t0ken")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
				!strings.Contains(string(body), "answers GET, HEAD only") {
				t.Errorf("POST: %d, Allow %q, %s; want 405, GET, HEAD, saying it answers GET, HEAD only", resp.StatusCode, resp.Header.Get("Allow"), body)
			}
			if !on {
				resp := get("t0ken")
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("with prometheus_metrics = false: %d, want 404", resp.StatusCode)
				}
				return
			}
			var m metricSet
			eventually(t, 30*time.Second, "a failed report counted", func() bool {
				resp := get("t0ken")
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /v1/metrics: %d", resp.StatusCode)
				}
				m = parseMetrics(t, resp.Body)
				return m.get("foreshape_client_reports_total", "outcome", "failed") >= 1
			})
			if m.get("foreshape_client_reports_total", "outcome", "ok") != 0 || m.get("foreshape_client_last_report_timestamp_seconds") != 0 {
				t.Errorf("a client agent no server answered: ok reports %v, last report %v; want 0 and 0",
					m.get("foreshape_client_reports_total", "outcome", "ok"), m.get("foreshape_client_last_report_timestamp_seconds"))
			}
			if m.get("go_goroutines") <= 0 || m.get("process_start_time_seconds") <= 0 {
				t.Error("the client agent serves no Go or process metrics")
			}
		})
	}
}

// TestAlertRulesOnPrometheus: a real Prometheus scrapes dev agents and
// evaluates deploy/foreshape-alerts.rules.yml over what they serve. Every
// rule evaluates without error; over a healthy agent (job "foreshape") the
// cluster and cycle alerts stay inactive; two agents that each lead a
// cluster of their own, scraped under one job ("split"), make
// ForeshapeMultipleLeaders pending for that job alone; with every Nomad
// request failing, ForeshapeNomadSourceFailing is pending for the healthy
// agent's source, and inactive again once Nomad answers. (Pending, not
// firing: their for clauses are minutes long; promtool's unit tests in
// deploy/ fire them.)
func TestAlertRulesOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server and three agents")
	}
	t.Parallel()
	// The io scenario's six nodes and three plain policies: the rules read
	// the agents' own metrics, which any cluster gives, and the three
	// agents lead and cycle every 100 ms at 600x, which on the default
	// scenario and the dev policies (150-600 ms a cycle with -race) took
	// all the CPU there was.
	sc, err := sim.ParseScenario([]byte(ioScenarioSource()), "io.hcl")
	if err != nil {
		t.Fatal(err)
	}
	d := startScenario(t, sc, 600)
	a, _, _ := startDevAgentOn(t, d, Options{Policies: ioPolicies(t)}, nil)
	b, _, _ := startDevAgentOn(t, d, Options{Policies: ioPolicies(t)}, func(cfg *config.Config) { cfg.Name = "split-b" })
	c, _, _ := startDevAgentOn(t, d, Options{Policies: ioPolicies(t)}, func(cfg *config.Config) { cfg.Name = "split-c" })
	// A second's scrape (and so its timeout): a dev agent at 600× under a
	// loaded CI machine can take longer than a quarter second to answer
	// /v1/metrics, and a failed scrape makes foreshape_leader absent
	// (ForeshapeMetricsAbsent pending) until the next one succeeds.
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: time.Second, RuleFiles: []string{"../deploy/foreshape-alerts.rules.yml"}},
		promtest.Target{Job: "foreshape", Addr: a.HTTPAddr(), MetricsPath: "/v1/metrics"},
		promtest.Target{Job: "split", Addr: b.HTTPAddr(), More: []string{c.HTTPAddr()}, MetricsPath: "/v1/metrics"})

	// active returns the pending or firing alerts by name, each as its
	// job (and source, for the source alerts).
	active := func(rules []promtest.Rule) map[string][]string {
		out := map[string][]string{}
		for _, r := range rules {
			for _, al := range r.Alerts {
				who := al.Labels["job"]
				if s := al.Labels["source"]; s != "" {
					who += "/" + s
				}
				out[r.Name] = append(out[r.Name], who+":"+al.State)
			}
		}
		return out
	}
	quiet := []string{"ForeshapeNoLeader", "ForeshapeServerLostLeader", "ForeshapeServerBehind", "ForeshapeStateHalted",
		"ForeshapeDataDirFailing", "ForeshapeCyclesFailing", "ForeshapeNoSuccessfulCycle", "ForeshapeNomadSourceFailing",
		"ForeshapeMetricsAbsent"}
	// The rules' first evaluations may come before the first scrapes
	// (ForeshapeMetricsAbsent pending): what holds once the agents are
	// scraped is what counts.
	prom.WaitForSeries(t, `foreshape_leader{job="foreshape"}`, time.Time{}, 30*time.Second)
	var (
		rules []promtest.Rule
		got   map[string][]string
	)
	healthy := func() bool {
		rules = prom.Rules(t)
		got = active(rules)
		for _, r := range rules {
			if r.Health != "ok" {
				return false
			}
		}
		for _, n := range quiet {
			if len(got[n]) > 0 {
				return false
			}
		}
		return len(rules) >= 18 && slices.Equal(got["ForeshapeMultipleLeaders"], []string{"split:pending"})
	}
	deadline := time.Now().Add(60 * time.Second)
	for !healthy() {
		if time.Now().After(deadline) {
			for _, r := range rules {
				if r.Health != "ok" {
					t.Errorf("%s: health %s: %s", r.Name, r.Health, r.LastError)
				}
			}
			t.Fatalf("after 60 s over healthy agents: active alerts %v; want ForeshapeMultipleLeaders pending for split alone, and none of %v", got, quiet)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("active alerts over healthy agents: %v", got)

	if err := d.Cluster.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ForeshapeNomadSourceFailing pending for every job", func() bool {
		got = active(prom.Rules(t))
		nomad := got["ForeshapeNomadSourceFailing"]
		return slices.Contains(nomad, "foreshape/nomad:pending") && slices.Contains(nomad, "split/nomad:pending")
	})
	if err := d.Cluster.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ForeshapeNomadSourceFailing inactive again", func() bool {
		return len(active(prom.Rules(t))["ForeshapeNomadSourceFailing"]) == 0
	})
}

// TestCycleTelemetry: a cycle whose collection failed counts as an error
// and its wall time is observed; one skipped before collecting (no data
// time) counts as an error alone; only an ok or partial cycle moves the
// last success; a failed source's foreshape_source_up is 0; a series whose
// forecast failed counts in foreshape_series_skipped (docs/telemetry.md).
func TestCycleTelemetry(t *testing.T) {
	reg := prometheus.NewRegistry()
	tel := newTelemetry(reg)
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tel.observe(api.Cycle{Duration: 30 * time.Millisecond}, cycleError, collect.Stats{Failed: []string{"nomad"}}, predict.Result{},
		[]string{"nomad"}, end)
	tel.skippedCycle()
	m := gatherSet(t, reg)
	if got := m["foreshape_cycle_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("foreshape_cycle_duration_seconds counts %d cycles; want the one that collected, though it failed", got)
	}
	if got := m.get("foreshape_cycles_total", "outcome", "error"); got != 2 {
		t.Errorf("foreshape_cycles_total{outcome=\"error\"} = %v, want 2", got)
	}
	if got := m.get("foreshape_cycle_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("the last success is %v after error cycles alone", got)
	}
	if got := m.get("foreshape_source_up", "source", "nomad"); got != 0 {
		t.Errorf("foreshape_source_up{source=\"nomad\"} = %v after its collection failed", got)
	}
	tel.observe(api.Cycle{Duration: time.Second}, cyclePartial, collect.Stats{}, predict.Result{}, []string{"nomad"}, end)
	m = gatherSet(t, reg)
	if got := m.get("foreshape_cycle_last_success_timestamp_seconds"); got != float64(end.Unix()) {
		t.Errorf("the last success is %v after a partial cycle ending at %v", got, end.Unix())
	}
	// A series whose forecast failed is skipped as one warming up is.
	tel.observe(api.Cycle{Duration: time.Second}, cycleOK, collect.Stats{}, predict.Result{Pending: []predict.Pending{
		{State: predict.Failed}, {State: predict.WarmingUp}, {State: predict.Stale}, {State: predict.NoData}}}, []string{"nomad"}, end)
	if got := gatherSet(t, reg).get("foreshape_series_skipped"); got != 4 {
		t.Errorf("foreshape_series_skipped = %v for a failed, a warming up, a stale and a no-data series; want 4", got)
	}
}

// TestForecastGaugesPerSeries: with the default quantiles, each series the
// leader's last cycle forecast carries 37 series of the two forecast
// gauges (docs/telemetry.md): foreshape_forecast at each of the four
// default horizons and nine quantiles (the eight default ones, the
// policy's planning quantile among them, and mean), and one
// foreshape_hotspot_probability; their metric label is cpu, memory or iops
// where no policy has forecast.queries, though the policy scales
// (webPolicies, as a dev policy does).
func TestForecastGaugesPerSeries(t *testing.T) {
	t.Parallel()
	d := startScenario(t, webScenario(t), 600)
	a := leaderByHand(t, d, "gauges-test")
	ctx, endTerm := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.leaderLoop(ctx)
	}()
	defer func() {
		endTerm()
		<-done
	}()
	type series struct{ policy, locality, metric string }
	count := func(f *dto.MetricFamily) map[series]int {
		out := map[series]int{}
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[series{l["policy"], l["locality"], l["metric"]}]++
		}
		return out
	}
	var forecasts, hotspots map[series]int
	eventually(t, 30*time.Second, "forecasts and their gauges from one cycle", func() bool {
		m := scrapeHandler(t, a.api)
		if m["foreshape_forecast"] == nil || m["foreshape_hotspot_probability"] == nil {
			return false
		}
		forecasts, hotspots = count(m["foreshape_forecast"]), count(m["foreshape_hotspot_probability"])
		// The gauge is set just after the cycle publishes its forecasts.
		return float64(len(hotspots)) == m.get("foreshape_forecasts")
	})
	for _, f := range a.Forecasts(context.Background()) {
		if f.Ready() && !slices.Equal(f.Quantiles, forecast.DefaultQuantiles) {
			t.Fatalf("%s %s: quantiles %v, not the default ones: the count below is not the page's case", f.Policy, f.Series, f.Quantiles)
		}
	}
	if len(forecasts) != len(hotspots) {
		t.Errorf("foreshape_forecast covers %d series, foreshape_hotspot_probability %d", len(forecasts), len(hotspots))
	}
	for s, n := range forecasts {
		// webPolicies have no forecast.queries: the metric label is
		// one of the three forecast for every locality, never the absolute
		// cpu_mhz or memory_mb behind a scale block's demand.
		if !slices.Contains([]string{"cpu", "memory", "iops"}, s.metric) {
			t.Errorf("%v: metric %q", s, s.metric)
		}
		if n != 36 || hotspots[s] != 1 {
			t.Errorf("%v: %d foreshape_forecast and %d foreshape_hotspot_probability series; want 36 and 1", s, n, hotspots[s])
		}
	}
	t.Logf("%d forecast series on the scrape", len(forecasts))
}
