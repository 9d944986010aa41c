package sim

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// gauge is one metric value with its labels, the common form of the JSON
// and Prometheus outputs of /v1/metrics.
type gauge struct {
	name    string // dotted, as go-metrics names them: nomad.client.host.cpu.total_percent
	help    string
	labels  map[string]string
	value   float64
	counter bool // a cumulative counter (Prometheus output only)
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
			newGauge("nomad.client.host.cpu.total_percent", "CPU in use on the node, percent of capacity.", l, served/float64(n.cpu)*100),
			newGauge("nomad.client.host.cpu.total_ticks", "CPU in use on the node, MHz.", l, served),
			newGauge("nomad.client.host.memory.total", "Node memory, bytes.", l, float64(n.mem<<20)),
			newGauge("nomad.client.host.memory.used", "Node memory in use, bytes.", l, usedMem*(1<<20)),
			newGauge("nomad.client.host.memory.available", "Node memory available, bytes.", l, (float64(n.mem)-usedMem)*(1<<20)),
			newGauge("nomad.client.allocated.cpu", "CPU allocated to allocations, MHz.", l, float64(n.resCPU)),
			newGauge("nomad.client.unallocated.cpu", "CPU not allocated, MHz.", l, float64(n.cpu-n.resCPU)),
			newGauge("nomad.client.allocated.memory", "Memory allocated to allocations, MB.", l, float64(n.resMem)),
			newGauge("nomad.client.unallocated.memory", "Memory not allocated, MB.", l, float64(n.mem-n.resMem)),
			newGauge("nomad.client.allocations.running", "Running allocations on the node.", l, float64(running)),
			newGauge("foreshape.sim.node.iops", "Disk IOPS demanded on the node.", l, n.demIOPS),
			newGauge("foreshape.sim.node.iops_capacity", "Disk IOPS the node can serve.", l, float64(n.iops)),
			newGauge("foreshape.sim.node.cpu_demand_mhz", "CPU demanded on the node (may exceed capacity), MHz.", l, n.demCPU),
			newGauge("foreshape.sim.node.memory_demand_mb", "Memory demanded on the node (may exceed capacity), MB.", l, n.demMem),
		)
	}
	for _, n := range c.nodes {
		// node_exporter's disk counters, so the usual IOPS query
		// (rate of reads plus writes completed) works on the sim.
		l := map[string]string{"node_id": n.id, "node_name": n.name, "datacenter": n.dc, "node_pool": n.pool, "node_class": n.class, "device": "sda"}
		out = append(out,
			gauge{name: "node.disk.reads.completed.total", help: "Disk reads completed (the served IOPS' read share).", labels: l, value: n.ioReads, counter: true},
			gauge{name: "node.disk.writes.completed.total", help: "Disk writes completed (the served IOPS' write share).", labels: l, value: n.ioWrites, counter: true},
		)
	}
	if c.sc.PublishAllocationMetrics {
		for _, a := range c.live {
			if a.client != allocRunning || a.node.noAllocMet {
				continue
			}
			n := a.node
			served := a.served
			l := map[string]string{"alloc_id": a.id, "job": a.job.id, "task_group": a.grp.name, "namespace": api.DefaultNamespace,
				"node_id": n.id, "datacenter": n.dc, "node_pool": n.pool, "node_class": n.class}
			out = append(out,
				gauge{name: "nomad.client.allocs.cpu.total_ticks", help: "CPU served to the allocation, MHz.", labels: l, value: served},
				gauge{name: "nomad.client.allocs.cpu.total_percent", help: "CPU served to the allocation, percent of one core.", labels: l, value: served / (float64(n.cpu) / float64(n.cores)) * 100},
				gauge{name: "nomad.client.allocs.cpu.throttled_time", help: "CPU time throttled since the allocation started, ns.", labels: l, value: a.thrNS},
				gauge{name: "nomad.client.allocs.memory.usage", help: "Memory used by the allocation, bytes.", labels: l, value: a.mem * (1 << 20)},
				gauge{name: "nomad.client.allocs.memory.allocated", help: "Memory allocated to the allocation, bytes.", labels: l, value: float64(a.grp.mem << 20)},
				gauge{name: "foreshape.sim.alloc.iops", help: "Disk IOPS demanded by the allocation.", labels: l, value: a.iops},
			)
		}
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
		out = append(out, newGauge("foreshape.sim.locality.migrations_active", "Migrations transferring through the locality.", map[string]string{"datacenter": loc.name}, float64(using[loc])))
	}
	out = append(out,
		newGauge("nomad.nomad.blocked_evals.total_blocked", "Blocked evaluations.", map[string]string{}, float64(len(c.blocked))),
		newGauge("nomad.nomad.job_summary.total_jobs", "Registered jobs.", map[string]string{}, float64(len(c.jobs))),
		newGauge("foreshape.sim.migrations.active", "Migrations transferring in the cluster.", map[string]string{}, float64(active)),
		newGauge("foreshape.sim.virtual_time_seconds", "The simulator's virtual time, Unix seconds.", map[string]string{}, float64(c.now.Unix())),
	)
	return out
}

func newGauge(name, help string, labels map[string]string, value float64) gauge {
	return gauge{name: name, help: help, labels: labels, value: value}
}

func promName(s string) string { return strings.NewReplacer(".", "_", "-", "_").Replace(s) }

// gaugeCollector exposes a snapshot of gauges to a Prometheus registry,
// every sample stamped with the virtual time the snapshot was taken at.
type gaugeCollector struct {
	gs []gauge
	at time.Time
}

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
		kind := prometheus.GaugeValue
		if m.counter {
			kind = prometheus.CounterValue
		}
		ch <- prometheus.NewMetricWithTimestamp(g.at, prometheus.MustNewConstMetric(d, kind, m.value, vals...))
	}
}

// metrics serves /v1/metrics. The Prometheus text stamps every sample with
// the sim's virtual time (a real Nomad and node_exporter leave the
// timestamp out, so the scraper's wall clock applies): a Prometheus that
// scrapes the sim then stores its samples at the times the sim was at,
// and range queries at data time (what the agent sends) find them,
// however fast the virtual clock runs. A Prometheus that scrapes the sim
// needs a storage of its own, since the virtual time may lie far in its
// past.
func (c *Cluster) metrics(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "prometheus" {
		c.mu.Lock()
		gs, at := c.gauges(), c.now
		c.unlock()
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(gaugeCollector{gs: gs, at: at}); err != nil {
			writeErr(w, err)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	c.query(w, r, func() (any, error) {
		s := &api.MetricsSummary{Timestamp: c.now.Format("2006-01-02 15:04:05 -0700 MST"), Points: []api.PointValue{}, Counters: []api.SampledValue{}, Samples: []api.SampledValue{}}
		for _, g := range c.gauges() {
			if g.counter {
				continue
			}
			s.Gauges = append(s.Gauges, api.GaugeValue{Name: g.name, Value: float32(g.value), DisplayLabels: g.labels})
		}
		return s, nil
	})
}
