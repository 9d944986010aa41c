package agent

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// ioScenario has three datacenters of two nodes, each running one job
// (ioJob) whose disk IOPS are a given share of reads.
const ioScenario = `
name  = "io"
seed  = 11
start = "2026-02-02T00:00:00Z"
tick  = "10s"

trace "cpu" {
  file = "planetlab/20110303/ait05_us_es_princeton_codeen"
  unit = "percent"
}

trace "disk" {
  file   = "nab/data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv"
  column = "value"
  unit   = "max"
}
`

// ioLocality is one datacenter of ioScenario: the read share of its disk
// IOPS and the characterisation it must get.
type ioLocality struct {
	dc        string
	readShare float64
	want      string
}

var ioLocalities = []ioLocality{
	{"dc1", 0.8, "read-heavy"},
	{"dc2", 0.2, "write-heavy"},
	{"dc3", 0.5, "balanced"},
}

func ioScenarioSource() string {
	var b strings.Builder
	b.WriteString(ioScenario)
	for _, l := range ioLocalities {
		fmt.Fprintf(&b, `
datacenter %[1]q {
  bandwidth = 100
}

nodes %[1]q {
  datacenter = %[1]q
  count      = 2
  cpu        = 4000
  memory     = 8192
  iops       = 4000
}

job %[1]q {
  datacenters = [%[1]q]

  group "app" {
    count  = 2
    cpu    = 1000
    memory = 1024
    iops   = 1000

    load {
      cpu {
        trace = "cpu"
      }
      memory {
        scale = 0.5
      }
      iops {
        trace      = "disk"
        read_share = %[2]v
      }
    }
  }
}
`, l.dc, l.readShare)
	}
	return b.String()
}

func ioPolicies(t *testing.T) []*policies.Policy {
	t.Helper()
	var b strings.Builder
	for _, l := range ioLocalities {
		fmt.Fprintf(&b, `
shaping %[1]q {
  locality {
    datacenter = %[1]q
  }
  forecast {
    horizon = "30m"
    step    = "1m"
  }
  headroom {
    cpu = 20
  }
}
`, l.dc)
	}
	pols, diags := policies.Parse("io.hcl", []byte(b.String()))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return pols
}

// A real Prometheus scrapes the simulator's node_exporter disk counters; the
// agent reads IOPS, reads and writes per locality from it and calls each
// locality read-heavy, write-heavy or balanced as the simulator split its
// disk operations.
func TestPrometheusIOPSAndReadWriteCharacterisation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server and runs three hours of data time")
	}
	t.Parallel()
	sc, err := sim.ParseScenario([]byte(ioScenarioSource()), "io.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// 300 data seconds a second, so that the two hours of history the
	// characterisation needs come in 24 s; a scrape every 250 ms is 75 s
	// of data time apart, so the 5-minute rate windows hold four scrapes.
	// A cycle every 2 data minutes, not the policies' step of one (200 ms
	// at this speed), still puts two or three CPU samples in each of the
	// 5-minute buckets the characterisation counts, and the agent cycles
	// as often a wall second as it did at 150x. Scraped every 125 ms at this speed, the
	// simulator's lock was held by scrapes so long under load that its
	// answers took over 30 s (e0b8085); its ticks here are cheap (360 in
	// 15 ms with the race detector), its metrics are not (44 ms a scrape).
	const speed = 300
	d := startScenario(t, sc, speed)
	prom := promtest.Start(t, promtest.Options{
		ScrapeInterval: 250 * time.Millisecond,
		// The sim stamps its samples with its virtual time, months before
		// the wall clock.
		AcceptPast: max(time.Since(sc.Start), 0) + 30*24*time.Hour,
	}, promtest.Target{
		Job: "nomad", Addr: strings.TrimPrefix(d.URL, "http://"),
		MetricsPath: "/v1/metrics", Params: map[string]string{"format": "prometheus"},
	})

	cfg := config.DevDefault()
	cfg.Name = "agent-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = d.URL
	cfg.Prometheus.Address = prom.URL
	a, err := New(cfg, Options{Logger: testLogger(t), Clock: d, Policies: ioPolicies(t), CycleInterval: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	c := &api.Client{Address: a.HTTPAddr()}

	// The three IOPS series of every locality reach the store, and reads
	// and writes split IOPS as the sim does.
	eventually(t, 3*time.Minute, "iops, iops_read and iops_write of every locality", func() bool {
		series, err := c.Series(ctx)
		if err != nil {
			return false
		}
		have := map[string]api.Series{}
		for _, s := range series {
			have[s.Series] = s
		}
		for _, l := range ioLocalities {
			for _, m := range []string{"iops", "iops_read", "iops_write"} {
				if s, ok := have[l.dc+":"+m]; !ok || s.Points < 5 || s.Stale {
					return false
				}
			}
		}
		return true
	})
	// The three series are three queries: a scrape that lands between
	// them (at 150 data seconds a second, a few wall milliseconds under
	// load are data seconds) moves one of them at that point — by 10% at
	// load 10 (reads and writes 185.2 each, IOPS 335.96). A wrong split
	// moves every point, so one point off (or a tenth of the hour's) is let by.
	for _, l := range ioLocalities {
		read, write, total := lastHour(t, a, l.dc)
		var n, off int
		for i := range total {
			if math.IsNaN(total[i]) || total[i] <= 0 {
				continue
			}
			n++
			share, sum := math.Abs(read[i]/total[i]-l.readShare) <= 0.005, math.Abs(read[i]+write[i]-total[i]) <= 0.01*total[i]
			if !share || !sum {
				off++
				t.Logf("%s: point %d: reads %v + writes %v of IOPS %v (reads %.3f of IOPS, the sim's %.2f)", l.dc, i, read[i], write[i], total[i], read[i]/total[i], l.readShare)
			}
		}
		if n < 2 {
			t.Errorf("%s: %d IOPS points in the store's last hour, want at least 2", l.dc, n)
		}
		if off > max(1, n/10) {
			t.Errorf("%s: %d of %d points do not split IOPS as the sim does (reads %.2f, reads + writes = IOPS)", l.dc, off, n, l.readShare)
		}
	}

	// Once two hours of history are in, each locality is characterised,
	// its IO by the split.
	var fcs []api.Forecast
	eventually(t, 6*time.Minute, "every locality's workload with its IO characterisation", func() bool {
		var err error
		if fcs, err = c.Forecasts(ctx); err != nil {
			return false
		}
		n := 0
		for _, f := range fcs {
			if f.Metric == "iops" && f.Ready() && f.Workload != nil && f.Workload.IO != "" {
				n++
			}
		}
		return n == len(ioLocalities)
	})
	for _, l := range ioLocalities {
		for _, f := range fcs {
			if f.Locality == l.dc && f.Metric == "iops" {
				if f.Workload.IO != l.want {
					t.Errorf("%s (reads %.0f%% of IOPS): workload IO %q, want %q", l.dc, 100*l.readShare, f.Workload.IO, l.want)
				}
			}
		}
	}
}

// lastHour reads the locality's disk reads, writes and IOPS from the
// agent's store over the hour before its newest IOPS point, at one minute.
func lastHour(t *testing.T, a *Agent, dc string) (read, write, total []float64) {
	t.Helper()
	var end time.Time
	for _, in := range a.fsm.Infos() {
		if in.Key == (state.Key{Locality: dc, Metric: source.IOPS}) {
			// Up to the cycle before the last: the agent keeps
			// collecting while the three ranges are read, and the last
			// cycle's samples may be written between two of the reads.
			end = in.LastSample.Add(-time.Second)
		}
	}
	grid := func(metric string) []float64 {
		g, err := a.fsm.Range(state.Key{Locality: dc, Metric: metric}, time.Minute, end.Add(-time.Hour), end)
		if err != nil {
			t.Fatal(err)
		}
		return g.Mean
	}
	return grid(source.IOPSRead), grid(source.IOPSWrite), grid(source.IOPS)
}

// A Prometheus that is down when the agent starts, then answers, with a
// policy one of whose queries Prometheus refuses: the agent's cycles go on
// with Nomad's series all along; Prometheus's failure is one line, and so
// is its recovery; the refused query is one line naming the policy, its
// file and field, and Prometheus's reason, while the policy's other query
// is read. Down again mid-run, it is one more line, and one for its
// series marked stale (two when it begins within a cycle).
func TestPrometheusDownAtStartAndABadQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	t.Parallel()
	// ioScenario's six nodes, not the default scenario's 24: the test
	// reads dc1's Nomad series and its Prometheus series, and its phases
	// count cycles, which took 150-600 ms with the race detector on the
	// default scenario (1.8 s in a run of the package: 20 cycles were 36
	// of the minute the test waits) and take 20-60 ms on this one.
	// 60 data seconds a second, scraped every second. Prometheus bounds a
	// scrape by its interval, and under load with the race detector the
	// simulator's metrics took over 250 ms to answer: in one failing run
	// 2 scrapes of 289 came in, in another Prometheus had no series for
	// the policy's query for the minute the test waited. At 600x the
	// simulator fell behind its clock and its API stalled (nodes' stats
	// timed out, a cycle took nearly 3 s). Scrapes a data minute apart
	// still put five in the 5-minute windows the IOPS queries' rates read.
	sc, err := sim.ParseScenario([]byte(ioScenarioSource()), "io.hcl")
	if err != nil {
		t.Fatal(err)
	}
	d := startScenario(t, sc, 60)
	prom := promtest.Start(t, promtest.Options{
		ScrapeInterval: time.Second,
		AcceptPast:     max(time.Since(sc.Start), 0) + 30*24*time.Hour,
	}, promtest.Target{
		Job: "nomad", Addr: strings.TrimPrefix(d.URL, "http://"),
		MetricsPath: "/v1/metrics", Params: map[string]string{"format": "prometheus"},
	})
	proxy := prom.Proxy(t)
	proxy.Fail(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }) // the connection drops
	pols, diags := policies.Parse("web.hcl", []byte(`
shaping "web" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    horizon = "30m"
    step    = "1m"
    queries = {
      demand = "sum(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} })"
      broken = "sum(rate(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} }))"
    }
  }
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})})
	_, _, c := startDevAgentOn(t, d, Options{Logger: log, Policies: pols, CycleInterval: 100 * time.Millisecond}, func(cfg *config.Config) {
		cfg.Prometheus.Address = proxy.URL
	})
	ctx := context.Background()
	points := func(series string) int {
		ss, err := c.Series(ctx)
		if err != nil {
			return 0
		}
		for _, s := range ss {
			if s.Series == series {
				return s.Points
			}
		}
		return 0
	}
	failing := map[time.Time]bool{}
	eventually(t, time.Minute, "Nomad's series while Prometheus is down, over 20 cycles", func() bool {
		st, err := c.Status(ctx)
		if err == nil && st.LastCycle != nil && strings.Contains(st.LastCycle.Error, "prometheus") {
			failing[st.LastCycle.Started] = true
		}
		return points("dc1:cpu") >= 5 && len(failing) >= 20
	})
	const down = "source failed; its series get no samples while it fails: source=prometheus"
	if n := logs.count(down); n != 1 {
		t.Errorf("%d cycles without Prometheus logged %q %d times, want once", len(failing), down, n)
	}

	// A cycle's queries run side by side: the one that brings the first
	// samples of demand may have asked broken while the connection still
	// dropped (a failure of Prometheus, not of the query), so the
	// refusal's line may come a cycle later.
	proxy.Fail(nil)
	const refused = "query failed; its series gets no samples while it fails"
	eventually(t, time.Minute, "the policy's Prometheus query read, the other refused", func() bool {
		return points("dc1:demand") >= 3 && logs.count(refused) > 0
	})
	if n := logs.count("source answers again: source=prometheus"); n != 1 {
		t.Errorf("Prometheus's recovery logged %d times, want once", n)
	}
	if n := logs.count(refused); n != 1 {
		t.Fatalf("the refused query logged %d times, want once", n)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, refused) {
			line = l
		}
	}
	for _, want := range []string{`series=dc1:broken`, `origin="policy \"web\" forecast.queries.broken (web.hcl:`, `expected type range vector`} {
		if !strings.Contains(line, want) {
			t.Errorf("the refused query's line %q does not say %s", line, want)
		}
	}

	// Down again mid-run, answering 503: one more line, and Nomad's
	// series go on; the Prometheus series in the store are marked stale
	// with one line, not one a series.
	staleBefore := logs.count("series stale")
	proxy.Fail(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	before, failing := points("dc1:cpu"), map[time.Time]bool{}
	eventually(t, time.Minute, "Nomad's series while Prometheus answers 503, over 20 cycles", func() bool {
		st, err := c.Status(ctx)
		if err == nil && st.LastCycle != nil && strings.Contains(st.LastCycle.Error, "503") {
			failing[st.LastCycle.Started] = true
		}
		return points("dc1:cpu") >= before+5 && len(failing) >= 20
	})
	if n := logs.count(down); n != 2 {
		t.Errorf("Prometheus down twice logged %q %d times, want twice", down, n)
	}
	// One line a cycle the outage's start spans (it may begin between
	// two of a cycle's queries), not one a series (4).
	if n := logs.count("series stale") - staleBefore; n < 1 || n > 2 {
		t.Errorf("Prometheus answering 503 marked its series stale in %d lines, want 1 (or 2, when it began within a cycle)", n)
	}
}

// A refused prometheus.iops_query's log line names the setting and, when a
// file set it, where.
func TestIOPSQueryOrigin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(path, []byte("data_dir = \"/var/lib/fs\"\n\nprometheus {\n  address    = \"http://prom:9090\"\n  iops_query = \"sum(rate(x{ {{.Matchers}} }))\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got, want := iopsQueryOrigin(cfg), "prometheus.iops_query ("+path+":5,16-47)"; got != want {
		t.Errorf("origin %q, want %q", got, want)
	}
	if got := iopsQueryOrigin(config.DevDefault()); got != "prometheus.iops_query" {
		t.Errorf("origin without a file %q", got)
	}
}
