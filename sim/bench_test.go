package sim

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/cputime"
)

// largeScenario is a 10,000-node cluster with 200 service jobs of 1,000
// allocations each, bound to bundled traces.
func largeScenario(nodes, jobs, perJob int) *Scenario {
	sc := &Scenario{
		Name: "large", Seed: 1, Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		Tick: 10 * time.Second, Startup: 5 * time.Second,
		Scheduler: api.SchedulerConfiguration{SchedulerAlgorithm: api.SchedulerAlgorithmBinpack,
			PreemptionConfig: api.PreemptionConfig{SystemSchedulerEnabled: true}},
		Traces: map[string]TraceSpec{
			"web":  {Name: "web", File: "planetlab/20110303/ait05_us_es_princeton_codeen", Unit: UnitPercent, Step: 5 * time.Minute},
			"asg":  {Name: "asg", File: "nab/data/realAWSCloudwatch/grok_asg_anomaly.csv", Unit: UnitPercent, Step: 5 * time.Minute},
			"mem":  {Name: "mem", File: "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv", Column: "avg_mem", Unit: UnitFraction, Step: 5 * time.Minute},
			"disk": {Name: "disk", File: "nab/data/realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv", Unit: UnitMax, Step: 5 * time.Minute},
		},
	}
	const dcs = 4
	for d := range dcs {
		name := fmt.Sprintf("dc%d", d+1)
		sc.Localities = append(sc.Localities, LocalitySpec{Name: name, BandwidthMBps: 1000})
		sc.NodeGroups = append(sc.NodeGroups, NodeGroupSpec{
			Name: name + "-n", Datacenter: name, NodePool: "default", NodeClass: "general",
			Count: nodes / dcs, CPU: 16000, MemoryMB: 32768, IOPS: 20000, Cores: 8,
		})
	}
	for i := range jobs {
		id := fmt.Sprintf("job-%03d", i)
		j := api.NewServiceJob(id, id, "global", 50)
		j.Datacenters = []string{fmt.Sprintf("dc%d", i%dcs+1), fmt.Sprintf("dc%d", (i+1)%dcs+1)}
		tg := api.NewTaskGroup("g", perJob)
		tg.AddTask(api.NewTask("t", "exec").Require(&api.Resources{CPU: new(500), MemoryMB: new(1024), IOPS: new(100)}))
		j.AddTaskGroup(tg)
		cpu := "web"
		if i%2 == 1 {
			cpu = "asg"
		}
		sc.Jobs = append(sc.Jobs, JobSpec{Job: j, Groups: map[string]GroupSimSpec{"g": {
			CPU:    LoadSpec{Trace: cpu, Scale: 1.5, Set: true},
			Memory: LoadSpec{Trace: "mem", Scale: 1.5, Set: true},
			IOPS:   LoadSpec{Trace: "disk", Scale: 4, Set: true},
			Jitter: 2 * time.Hour,
		}}})
	}
	return sc
}

// BenchmarkSimMinute10k measures one simulated minute of a 10,000-node,
// 200,000-allocation cluster (goal: under 1 s and 4 GiB).
func BenchmarkSimMinute10k(b *testing.B) {
	benchMinute(b, 10000, 200, 1000)
}

// BenchmarkSimMinute1k is the same at a tenth of the size.
func BenchmarkSimMinute1k(b *testing.B) {
	benchMinute(b, 1000, 20, 1000)
}

func benchMinute(b *testing.B, nodes, jobs, perJob int) {
	start := time.Now()
	c, err := New(largeScenario(nodes, jobs, perJob), Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Let allocations start and deployments finish before measuring.
	if err := c.Step(2 * time.Minute); err != nil {
		b.Fatal(err)
	}
	setup := time.Since(start)
	running := 0
	for _, a := range c.live {
		if a.client == allocRunning {
			running++
		}
	}
	if running != jobs*perJob {
		b.Fatalf("%d allocations running, want %d", running, jobs*perJob)
	}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Step(time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/float64(time.Millisecond), "cpu-ms/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(setup.Seconds(), "setup-s")
}
