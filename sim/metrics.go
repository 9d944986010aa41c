package sim

import (
	"net/http"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// gauge is one metric value with its labels, the common form of the JSON
// and Prometheus outputs of /v1/metrics.
type gauge struct {
	name   string // dotted, as go-metrics names them: nomad.client.host.cpu.total_percent
	help   string
	labels map[string]string
	value  float64
}

// gauges snapshots the metrics under the cluster lock: per node CPU,
// memory and IOPS (which a real Nomad does not report; foreshape reads it
// from Prometheus), allocation counts, and cluster-wide scheduler figures.
func (c *Cluster) gauges() []gauge {
	var out []gauge
	for _, n := range c.nodes {
		l := map[string]string{"node_id": n.id, "node_name": n.name, "datacenter": n.dc, "node_pool": n.pool, "node_class": n.class}
		served := min(n.demCPU, float64(n.cpu))
		running := 0
		for _, a := range n.allocs {
			if a.client == allocRunning {
				running++
			}
		}
		usedMem := min(n.demMem, float64(n.mem))
		out = append(out,
			gauge{"nomad.client.host.cpu.total_percent", "CPU in use on the node, percent of capacity.", l, served / float64(n.cpu) * 100},
			gauge{"nomad.client.host.cpu.total_ticks", "CPU in use on the node, MHz.", l, served},
			gauge{"nomad.client.host.memory.total", "Node memory, bytes.", l, float64(n.mem << 20)},
			gauge{"nomad.client.host.memory.used", "Node memory in use, bytes.", l, usedMem * (1 << 20)},
			gauge{"nomad.client.host.memory.available", "Node memory available, bytes.", l, (float64(n.mem) - usedMem) * (1 << 20)},
			gauge{"nomad.client.allocated.cpu", "CPU allocated to allocations, MHz.", l, float64(n.resCPU)},
			gauge{"nomad.client.unallocated.cpu", "CPU not allocated, MHz.", l, float64(n.cpu - n.resCPU)},
			gauge{"nomad.client.allocated.memory", "Memory allocated to allocations, MB.", l, float64(n.resMem)},
			gauge{"nomad.client.unallocated.memory", "Memory not allocated, MB.", l, float64(n.mem - n.resMem)},
			gauge{"nomad.client.allocations.running", "Running allocations on the node.", l, float64(running)},
			gauge{"foreshape.sim.node.iops", "Disk IOPS demanded on the node.", l, n.demIOPS},
			gauge{"foreshape.sim.node.iops_capacity", "Disk IOPS the node can serve.", l, float64(n.iops)},
			gauge{"foreshape.sim.node.cpu_demand_mhz", "CPU demanded on the node (may exceed capacity), MHz.", l, n.demCPU},
			gauge{"foreshape.sim.node.memory_demand_mb", "Memory demanded on the node (may exceed capacity), MB.", l, n.demMem},
		)
	}
	using := map[*locality]int{}
	for _, m := range c.migs {
		using[m.src]++
		if m.dst != nil && m.dst != m.src {
			using[m.dst]++
		}
	}
	active := len(c.migs)
	for _, loc := range c.locOrder {
		out = append(out, gauge{"foreshape.sim.locality.migrations_active", "Migrations transferring through the locality.", map[string]string{"datacenter": loc.name}, float64(using[loc])})
	}
	out = append(out,
		gauge{"nomad.nomad.blocked_evals.total_blocked", "Blocked evaluations.", map[string]string{}, float64(len(c.blocked))},
		gauge{"nomad.nomad.job_summary.total_jobs", "Registered jobs.", map[string]string{}, float64(len(c.jobs))},
		gauge{"foreshape.sim.migrations.active", "Migrations transferring in the cluster.", map[string]string{}, float64(active)},
		gauge{"foreshape.sim.virtual_time_seconds", "The simulator's virtual time, Unix seconds.", map[string]string{}, float64(c.now.Unix())},
	)
	return out
}

func promName(s string) string { return strings.NewReplacer(".", "_", "-", "_").Replace(s) }

// gaugeCollector exposes a snapshot of gauges to a Prometheus registry.
type gaugeCollector struct{ gs []gauge }

func (g gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(g, ch)
}

func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	descs := map[string]*prometheus.Desc{}
	for _, m := range g.gs {
		keys := make([]string, 0, len(m.labels))
		for k := range m.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := descs[m.name]
		if d == nil {
			d = prometheus.NewDesc(promName(m.name), m.help, keys, nil)
			descs[m.name] = d
		}
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = m.labels[k]
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, m.value, vals...)
	}
}

func (c *Cluster) metrics(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "prometheus" {
		c.mu.Lock()
		gs := c.gauges()
		c.unlock()
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(gaugeCollector{gs}); err != nil {
			writeErr(w, err)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	c.query(w, r, func() (any, error) {
		s := &api.MetricsSummary{Timestamp: c.now.Format("2006-01-02 15:04:05 -0700 MST"), Points: []api.PointValue{}, Counters: []api.SampledValue{}, Samples: []api.SampledValue{}}
		for _, g := range c.gauges() {
			s.Gauges = append(s.Gauges, api.GaugeValue{Name: g.name, Value: float32(g.value), DisplayLabels: g.labels})
		}
		return s, nil
	})
}
