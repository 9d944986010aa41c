package cluster_test

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/hashicorp/raft"
)

// listFSM is a minimal FSM for testing the node: it appends each command's
// bytes to a list. The command "reject" returns an error value instead.
type listFSM struct {
	mu     sync.Mutex
	values []string
	// block, when set, is received from before applying the command
	// "block", holding up the FSM.
	block chan struct{}
	// index is the last entry applied.
	index uint64
}

var errRejected = errors.New("rejected by the fsm")

func (f *listFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if string(l.Data) == "reject" {
		return errRejected
	}
	if string(l.Data) == "block" && f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values = append(f.values, string(l.Data))
	f.index = l.Index
	return len(f.values)
}

// AppliedIndex is the last command applied (cluster.Node.Ready reads it).
func (f *listFSM) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

func (f *listFSM) Values() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.values)
}

// waitValues waits, up to clustertest.Timeout, until f holds want: raft
// counts an entry applied (Status().AppliedIndex, clustertest.WaitApplied)
// as it hands it to the FSM, which applies it on its own goroutine a moment
// later. The caller checks the values afterwards.
func waitValues(t *testing.T, f *listFSM, want []string) {
	t.Helper()
	for deadline := time.Now().Add(clustertest.Timeout); time.Now().Before(deadline) && !slices.Equal(f.Values(), want); {
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	return listSnapshot(f.Values()), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var v []string
	if err := json.NewDecoder(rc).Decode(&v); err != nil {
		return err
	}
	f.mu.Lock()
	f.values = v
	f.mu.Unlock()
	return nil
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}
