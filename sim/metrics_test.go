package sim

import (
	"bytes"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promFamilies reads the cluster's Prometheus text through the API.
func promFamilies(t *testing.T, client *api.Client) map[string]*dto.MetricFamily {
	t.Helper()
	raw, err := client.Operator().Metrics(&api.QueryOptions{Params: map[string]string{"format": "prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("prometheus text does not parse: %v", err)
	}
	return fams
}

// A scraper stores the sim's samples at the sim's virtual time, not at the
// wall time it scraped them.
func TestPrometheusTextCarriesVirtualTime(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	for _, step := range []time.Duration{time.Minute, 90 * time.Second} {
		if err := c.Step(step); err != nil {
			t.Fatal(err)
		}
		want := c.Now().UnixMilli()
		n := 0
		for name, f := range promFamilies(t, client) {
			for _, m := range f.GetMetric() {
				n++
				if m.TimestampMs == nil || m.GetTimestampMs() != want {
					t.Fatalf("%s sample stamped %v, want the virtual time %v (%s)", name, m.TimestampMs, want, c.Now())
				}
			}
		}
		if n == 0 {
			t.Fatal("no samples")
		}
	}
}

// node_exporter's disk counters split each node's served IOPS into reads
// and writes by the read shares of the groups that demand them.
func TestDiskCountersFollowReadShares(t *testing.T) {
	c := newTestCluster(t, `
job "ingest" {
  datacenters = ["dc1"]
  group "ingest" {
    count  = 3
    cpu    = 500
    memory = 512
    iops   = 100
    load {
      iops {
        scale      = 0.5
        read_share = 0.2
      }
    }
  }
}

job "db" {
  datacenters = ["dc2"]
  group "db" {
    count  = 2
    cpu    = 500
    memory = 512
    iops   = 100
    load {
      iops {
        scale      = 0.5
        read_share = 0.9
      }
    }
  }
}
`)
	client := newTestAPI(t, c, "")
	// A job registered over the API says its share in meta; it runs beside
	// db in dc2 with twice db's IOPS.
	j := noUpdate(serviceJob("batch", 1, 500, 512, 50))
	j.Datacenters = []string{"dc2"}
	j.TaskGroups[0].Tasks[0].Resources.IOPS = new(200)
	j.TaskGroups[0].Meta = map[string]string{"sim.iops_scale": "0.5", "sim.iops_read_share": "0.3"}
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	fams := promFamilies(t, client)
	sums := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "datacenter" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	reads, writes := sums("node_disk_reads_completed_total"), sums("node_disk_writes_completed_total")
	want := map[string]float64{
		"dc1": 0.2,
		// db's 2 × 50 IOPS at 0.9 and batch's 100 at 0.3.
		"dc2": (2*50*0.9 + 100*0.3) / 200,
	}
	for dc, share := range want {
		total := reads[dc] + writes[dc]
		if total <= 0 {
			t.Fatalf("%s: no disk operations counted", dc)
		}
		if got := reads[dc] / total; math.Abs(got-share) > 1e-9 {
			t.Errorf("%s: read share %.4f, want %.4f (reads %v, writes %v)", dc, got, share, reads[dc], writes[dc])
		}
	}
}

func TestReadShareIsValidated(t *testing.T) {
	for name, tc := range map[string]struct{ load, want string }{
		"above one":   {"iops {\n scale = 0.5\n read_share = 1.5\n}", "read_share 1.5 is not between 0 and 1"},
		"negative":    {"iops {\n scale = 0.5\n read_share = -0.1\n}", "read_share -0.1 is not between 0 and 1"},
		"on cpu":      {"cpu {\n scale = 0.5\n read_share = 0.5\n}", `An argument named "read_share" is not expected here`},
		"on memory":   {"memory {\n scale = 0.5\n read_share = 0.5\n}", `An argument named "read_share" is not expected here`},
		"not numeric": {"iops {\n read_share = \"most\"\n}", "a number is required"},
	} {
		t.Run(name, func(t *testing.T) {
			src := smallScenario + "job \"x\" {\n group \"g\" {\n cpu = 100\n memory = 100\n load {\n" + tc.load + "\n}\n}\n}\n"
			_, err := ParseScenario([]byte(src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to say %q", err, tc.want)
			}
		})
	}
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	j := noUpdate(serviceJob("bad", 1, 100, 100, 50))
	j.TaskGroups[0].Meta = map[string]string{"sim.iops_read_share": "2"}
	if _, _, err := client.Jobs().Register(j, nil); statusOf(err) != http.StatusInternalServerError && statusOf(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "sim.iops_read_share") {
		t.Errorf("register with sim.iops_read_share = 2: %v, want it refused naming the key", err)
	}
}
