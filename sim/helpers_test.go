package sim

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
)

// testWriter routes logs to t.Log so they show only on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
}

// smallScenario is a two-datacenter cluster used by most tests; extra is
// appended to it (jobs, events, acl...).
const smallScenario = `
name  = "small"
seed  = 7
start = "2026-03-02T00:00:00Z"
tick  = "10s"

datacenter "dc1" {
  bandwidth = 100
}

datacenter "dc2" {
  bandwidth = 50
}

nodes "a" {
  datacenter = "dc1"
  count      = 3
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
  meta       = { rack = "r1" }
}

nodes "b" {
  datacenter = "dc2"
  count      = 2
  node_class = "db"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
  meta       = { rack = "r2" }
}

trace "web" {
  file = "planetlab/20110303/ait05_us_es_princeton_codeen"
  unit = "percent"
}
`

func mustScenario(t testing.TB, src string) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(src), "test.hcl")
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return sc
}

func newTestCluster(t testing.TB, extra string) *Cluster {
	t.Helper()
	c, err := New(mustScenario(t, smallScenario+extra), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	return c
}

// newTestAPI serves c on an httptest server and returns a real Nomad API
// client pointed at it.
func newTestAPI(t testing.TB, c *Cluster, token string) *api.Client {
	t.Helper()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL, SecretID: token, WaitTime: 2 * time.Second})
	if err != nil {
		t.Fatalf("api client: %v", err)
	}
	return client
}

// statusOf returns the HTTP status code of an api client error, or 0.
func statusOf(err error) int {
	var ure api.UnexpectedResponseError
	if errors.As(err, &ure) {
		return ure.StatusCode()
	}
	return 0
}

// serviceJob builds a service job with one group.
func serviceJob(id string, count, cpu, mem, prio int) *api.Job {
	j := api.NewServiceJob(id, id, "global", prio)
	j.Datacenters = []string{"*"}
	tg := api.NewTaskGroup("g", count)
	tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(cpu), MemoryMB: new(mem)}))
	j.AddTaskGroup(tg)
	return j
}

// noUpdate removes the job's update block so no deployment gates it.
func noUpdate(j *api.Job) *api.Job {
	j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	return j
}
