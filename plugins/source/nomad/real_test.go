package nomad

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// TestCollectAgainstRealNomad reads the Nomad at NOMAD_ADDR (with
// NOMAD_TOKEN, as the agent does) while a raw_exec job burns CPU on a
// node of each datacenter, and checks the source's figures against what
// Nomad says of the same nodes: a datacenter's cpu_mhz is its nodes' host
// CPUTicksConsumed (MHz, not percent), memory_mb their host memory in use
// (MiB), and the percents those over the capacity Nomad's scheduler
// allocates from (NodeResources less ReservedResources); a task group's
// cpu_mhz is its allocation's TotalTicks, and one its client does not
// measure is stale, not zero.
func TestCollectAgainstRealNomad(t *testing.T) {
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR is not set: checked against the simulator only. Set it to a Nomad with raw_exec enabled " +
			"(a dev agent will do; a second client in another datacenter adds its checks) to check the source against a real Nomad.")
	}
	setup := realnomad.Client(t, addr, realnomad.SetupToken(t, addr))
	client := realnomad.Client(t, addr, realnomad.Token())
	nodes, _, err := setup.Nodes().List(&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	var dcs []string
	byDC := map[string][]*nomadapi.NodeListStub{}
	for _, n := range nodes {
		if n.Status != "ready" {
			continue
		}
		if byDC[n.Datacenter] == nil {
			dcs = append(dcs, n.Datacenter)
		}
		byDC[n.Datacenter] = append(byDC[n.Datacenter], n)
	}
	if len(dcs) == 0 {
		t.Skipf("the Nomad at %s has no ready node", addr)
	}

	// One burning allocation per datacenter.
	id := fmt.Sprintf("foreshape-source-burn-%d", os.Getpid())
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = dcs
	tg := nomadapi.NewTaskGroup("burn", len(dcs))
	tg.Spreads = []*nomadapi.Spread{{Attribute: "${node.datacenter}", Weight: new(int8(100))}}
	tg.AddTask(nomadapi.NewTask("burn", "raw_exec").SetConfig("command", "/bin/sh").
		SetConfig("args", []string{"-c", "while :; do :; done"}).Require(&nomadapi.Resources{CPU: new(100), MemoryMB: new(32)}))
	job.AddTaskGroup(tg)
	if _, _, err := setup.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	t.Cleanup(func() {
		if _, _, err := setup.Jobs().Deregister(id, true, nil); err != nil {
			t.Errorf("purge %s: %v", id, err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		as, _, err := setup.Jobs().Allocations(id, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range as {
			if a.ClientStatus == "running" {
				n++
			}
		}
		if n == len(dcs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %s's %d allocations run after a minute", n, id, len(dcs))
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A raw_exec task's first measurements carry no CPU (measured: 0 MHz
	// for some 9 s while it burned, then 1,242 MHz): wait until each
	// allocation's client measured its CPU, or 30 s for those that never
	// measure (Timestamp 0).
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		as, _, err := setup.Jobs().Allocations(id, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, a := range as {
			if a.ClientStatus != "running" {
				continue
			}
			st, err := setup.Allocations().Stats(&nomadapi.Allocation{ID: a.ID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Timestamp == 0 || st.ResourceUsage.CpuStats.TotalTicks == 0 {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(time.Second)
	}

	s, err := New(Config{Client: client, AllocStats: true, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ls []source.Locality
	for _, dc := range dcs {
		ls = append(ls, policies.Locality{Datacenter: dc})
	}
	res, err := s.Collect(context.Background(), source.Request{Now: time.Now(), Step: time.Minute, Localities: ls})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = smp.Value
	}
	stale := map[string]string{}
	for _, st := range res.Stale {
		stale[st.Series] = st.Reason
	}
	// What Nomad says of the same nodes now; host figures move between
	// two reads, so they are compared within a tolerance.
	for _, dc := range dcs {
		var mhz, memMB, capMHz, capMB float64
		for _, n := range byDC[dc] {
			st, err := setup.Nodes().Stats(n.ID, nil)
			if err != nil {
				t.Fatalf("stats of %s: %v", n.Name, err)
			}
			mhz += st.CPUTicksConsumed
			memMB += float64(st.Memory.Used) / (1 << 20)
			capMHz += float64(n.NodeResources.Cpu.CpuShares) - float64(n.ReservedResources.Cpu.CpuShares)
			capMB += float64(n.NodeResources.Memory.MemoryMB) - float64(n.ReservedResources.Memory.MemoryMB)
			t.Logf("node %s (%s): host %.0f MHz of %d MHz (reserved %d), memory %.0f MiB used of %d MiB (reserved %d)",
				n.Name, dc, st.CPUTicksConsumed, n.NodeResources.Cpu.CpuShares, n.ReservedResources.Cpu.CpuShares,
				float64(st.Memory.Used)/(1<<20), n.NodeResources.Memory.MemoryMB, n.ReservedResources.Memory.MemoryMB)
		}
		gm, gp, gmb, gmp := got[dc+":cpu_mhz"], got[dc+":cpu"], got[dc+":memory_mb"], got[dc+":memory"]
		t.Logf("%s: cpu %.0f MHz = %.1f%%, memory %.0f MiB = %.1f%% (capacity %.0f MHz, %.0f MiB)", dc, gm, gp, gmb, gmp, capMHz, capMB)
		if gm <= 0 || gm > capMHz*1.01 || math.Abs(gp-100*gm/capMHz) > 1e-6 {
			t.Errorf("%s: %v MHz, %v%%; want host MHz within capacity %v and the percent of it", dc, gm, gp, capMHz)
		}
		if math.Abs(gm-mhz) > 0.25*capMHz {
			t.Errorf("%s: %v MHz, Nomad's host stats %v MHz", dc, gm, mhz)
		}
		if math.Abs(gmb-memMB) > 0.1*memMB || math.Abs(gmp-100*gmb/capMB) > 1e-6 {
			t.Errorf("%s: %v MiB, %v%%; Nomad's host stats %v MiB of %v", dc, gmb, gmp, memMB, capMB)
		}
	}
	// The burning allocations: measured ones carry their CPU, unmeasured
	// ones are stale.
	as, _, err := setup.Jobs().Allocations(id, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	scope := "group/default/" + id + "/burn"
	measured, unmeasured := 0, 0
	for _, a := range as {
		if a.ClientStatus != "running" {
			continue
		}
		st, err := setup.Allocations().Stats(&nomadapi.Allocation{ID: a.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Timestamp == 0 {
			unmeasured++
			t.Logf("allocation %s on %s: not measured (no task, Timestamp 0)", a.ID[:8], a.NodeName)
			continue
		}
		measured++
		t.Logf("allocation %s on %s: %.0f MHz (%.1f%% of a core), RSS %d B, measured %v", a.ID[:8], a.NodeName,
			st.ResourceUsage.CpuStats.TotalTicks, st.ResourceUsage.CpuStats.Percent, st.ResourceUsage.MemoryStats.RSS, st.ResourceUsage.MemoryStats.Measured)
	}
	switch {
	case unmeasured > 0:
		if _, ok := got[scope+":cpu_mhz"]; ok || !strings.Contains(stale[scope+":cpu_mhz"], "publish_allocation_metrics") {
			t.Errorf("%d of the group's allocations unmeasured: %s = %v, stale %q; want it stale naming publish_allocation_metrics",
				unmeasured, scope+":cpu_mhz", got[scope+":cpu_mhz"], stale[scope+":cpu_mhz"])
		}
	case got[scope+":cpu_mhz"] <= 0 || got[scope+":allocs"] != float64(measured):
		t.Errorf("%s: %v MHz over %v allocations (stale %q); want the burners' CPU over %d", scope,
			got[scope+":cpu_mhz"], got[scope+":allocs"], stale[scope+":cpu_mhz"], measured)
	}
}
