package sim

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// BenchmarkSpreadOverNodeIDs registers a 600-allocation group spreading
// evenly over ${node.unique.id} on 1,000 nodes: each placement scores 600
// nodes (the group's count is above the node limit of 100), and Nomad's
// even-spread boost reads the least and most used counts of every value for
// each of them.
func BenchmarkSpreadOverNodeIDs(b *testing.B) {
	sc := &Scenario{
		Name: "spread", Seed: 1, Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		Tick: 10 * time.Second, Startup: 5 * time.Second,
		Localities: []LocalitySpec{{Name: "dc1", BandwidthMBps: 1000}},
		NodeGroups: []NodeGroupSpec{{Name: "n", Datacenter: "dc1", NodePool: "default", Count: 1000,
			CPU: 16000, MemoryMB: 32768, IOPS: 20000, Cores: 8}},
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		c, err := New(sc, Options{})
		if err != nil {
			b.Fatal(err)
		}
		j := api.NewServiceJob("spread", "spread", "global", 50)
		j.Datacenters = []string{"dc1"}
		tg := api.NewTaskGroup("g", 600)
		tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(100), MemoryMB: new(128)}))
		tg.AddSpread(api.NewSpread("${node.unique.id}", 50, nil))
		j.AddTaskGroup(tg)
		b.StartTimer()
		if _, err := c.register(j, nil, triggerRegister); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n := len(c.live); n != 600 {
			b.Fatalf("%d allocations placed, want 600", n)
		}
		if i == 0 {
			used := map[*node]int{}
			for _, a := range c.live {
				used[a.node]++
			}
			b.ReportMetric(float64(len(used)), "nodes-used")
		}
		b.StartTimer()
	}
}
