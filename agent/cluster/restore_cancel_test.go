package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
)

// TestCancelWaitingForARestoreOfARequestTheBackupLacks: a cancel sent
// during a restore, of a request written after the backup was saved,
// waits for the restore and is then checked against the restored state,
// which does not hold the request: it fails as a cancel of an unknown
// request (the API's 404), as docs/clustering.md says, and changes
// nothing.
func TestCancelWaitingForARestoreOfARequestTheBackupLacks(t *testing.T) {
	c, fsms := stateCluster(t, 3)
	fill(t, c, "before", 1)
	l := c.Leader()
	_, saved, meta := saveBackup(t, c.Nodes[l])
	fill(t, c, "after", 1)
	var id string
	for _, r := range fsms[l].Act().Requests {
		if r.Resource.ID == "after-alloc-0" {
			id = r.ID
		}
	}
	if id == "" {
		t.Fatal("no request written after the backup")
	}
	waiting := make(chan struct{}, 1)
	cluster.OnApplyWaiting(c.Nodes[l], func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	answered := make(chan error, 1)
	asked := restoreWith(t, c.Nodes[l], meta, saved, func(uint64) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Nodes[l].Apply(ctx, state.Encode(state.CancelRequest{ID: id, At: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), Reason: "operator"}))
			answered <- err
		}()
		select {
		case <-waiting:
		case err := <-answered:
			answered <- err
		}
	})
	if err := <-answered; !errors.Is(err, state.ErrUnknownRequest) {
		t.Fatalf("a cancel sent during the restore of a request the backup lacks: %v; want state.ErrUnknownRequest", err)
	}
	c.WaitApplied(asked)
	for i, fsm := range fsms {
		if _, ok := fsm.Act().Request(id); ok {
			t.Errorf("node%d holds request %s, which the backup lacks", i, id)
		}
	}
}
