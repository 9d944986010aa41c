package sim

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestListPrefix checks the list endpoints' prefix parameter: the ID of one
// object lists that object alone, a prefix nobody has lists nothing but
// still answers with the table's index, and no prefix lists everything.
func TestListPrefix(t *testing.T) {
	c := newTestCluster(t, "")
	nc := newTestAPI(t, c, "")
	if _, _, err := nc.Jobs().Register(noUpdate(serviceJob("web", 4, 100, 128, 50)), nil); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	allocs, _, err := nc.Allocations().List(nil)
	if err != nil || len(allocs) != 4 {
		t.Fatalf("allocations: %d, %v; want 4", len(allocs), err)
	}
	nodes, _, err := nc.Nodes().List(nil)
	if err != nil || len(nodes) != 5 {
		t.Fatalf("nodes: %d, %v; want 5", len(nodes), err)
	}
	const none = "ffffffff-none"
	for _, tc := range []struct {
		name   string
		prefix string
		want   []string
		list   func(q *api.QueryOptions) ([]string, uint64, error)
	}{
		{"allocation by ID", allocs[2].ID, []string{allocs[2].ID}, listAllocIDs(nc)},
		{"allocations, no prefix", "", []string{allocs[0].ID, allocs[1].ID, allocs[2].ID, allocs[3].ID}, listAllocIDs(nc)},
		{"allocations, no match", none, nil, listAllocIDs(nc)},
		{"node by ID", nodes[1].ID, []string{nodes[1].ID}, listNodeIDs(nc)},
		{"nodes, no match", none, nil, listNodeIDs(nc)},
		{"job by ID", "we", []string{"web"}, listJobIDs(nc)},
		{"jobs, no match", none, nil, listJobIDs(nc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, idx, err := tc.list(&api.QueryOptions{Prefix: tc.prefix})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("listed %v; want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("listed %v; want %v", got, tc.want)
				}
			}
			if idx == 0 {
				t.Errorf("index 0; want the table's index")
			}
		})
	}
}

func listAllocIDs(nc *api.Client) func(q *api.QueryOptions) ([]string, uint64, error) {
	return func(q *api.QueryOptions) ([]string, uint64, error) {
		l, m, err := nc.Allocations().List(q)
		if err != nil {
			return nil, 0, err
		}
		var ids []string
		for _, a := range l {
			ids = append(ids, a.ID)
		}
		return ids, m.LastIndex, nil
	}
}

func listNodeIDs(nc *api.Client) func(q *api.QueryOptions) ([]string, uint64, error) {
	return func(q *api.QueryOptions) ([]string, uint64, error) {
		l, m, err := nc.Nodes().List(q)
		if err != nil {
			return nil, 0, err
		}
		var ids []string
		for _, n := range l {
			ids = append(ids, n.ID)
		}
		return ids, m.LastIndex, nil
	}
}

func listJobIDs(nc *api.Client) func(q *api.QueryOptions) ([]string, uint64, error) {
	return func(q *api.QueryOptions) ([]string, uint64, error) {
		l, m, err := nc.Jobs().List(q)
		if err != nil {
			return nil, 0, err
		}
		var ids []string
		for _, j := range l {
			ids = append(ids, j.ID)
		}
		return ids, m.LastIndex, nil
	}
}
