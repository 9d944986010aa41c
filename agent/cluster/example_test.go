package cluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/go-hclog"
)

// A single in-memory server (dev mode): the state FSM under a Raft node,
// leader work under RunLeaderLoop, commands encoded by package state.
func Example() {
	fsm, err := state.NewFSM(state.Config{})
	if err != nil {
		panic(err)
	}
	node, err := cluster.New(cluster.Config{
		NodeID:             "dev",
		InMemory:           true,
		Bootstrap:          true,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
	}, fsm, hclog.NewNullLogger())
	if err != nil {
		panic(err)
	}
	defer node.Close()

	ctx, stop := context.WithCancel(context.Background())
	node.RunLeaderLoop(ctx, func(leaderCtx context.Context) {
		defer stop() // one term is enough for the example
		now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
		cmd := state.Encode(state.AppendSamples{Step: time.Minute, Samples: []state.Sample{
			{Key: state.Key{Locality: "dc1/web", Metric: "cpu"}, Time: now, Value: 41.5},
			{Key: state.Key{Locality: "dc1/web", Metric: "mem"}, Time: now, Value: 63},
		}})
		applyCtx, cancel := context.WithTimeout(leaderCtx, 5*time.Second)
		defer cancel()
		res, err := node.Apply(applyCtx, cmd)
		if err != nil {
			fmt.Println("apply:", err)
			return
		}
		fmt.Printf("applied %d samples\n", res.(state.Result).Applied)
	})
	for _, k := range fsm.Keys() {
		p, _ := fsm.Latest(k)
		fmt.Printf("%s %v at %s\n", k, p.Mean, p.Time.Format(time.TimeOnly))
	}
	// Output:
	// applied 2 samples
	// dc1/web:cpu 41.5 at 12:00:00
	// dc1/web:mem 63 at 12:00:00
}
