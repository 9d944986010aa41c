package agent

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/raft"
)

// fullLogs is an in-memory log store whose appends fail with ENOSPC, as
// raft-boltdb's on a full disk, once full is set.
type fullLogs struct {
	*raft.InmemStore
	full atomic.Bool
}

func (s *fullLogs) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *fullLogs) StoreLogs(logs []*raft.Log) error {
	if s.full.Load() {
		return &fs.PathError{Op: "write", Path: "/data/raft.db", Err: syscall.ENOSPC}
	}
	return s.InmemStore.StoreLogs(logs)
}

// TestWriteRefusedForAFullDiskSaysSo: a lone server whose disk is full
// steps down at its first failed append and knows no leader until its
// next election (which fails the same way); a write it is asked for then
// is answered 503 saying that no leader is known and that this server
// cannot write to its data_dir, and why; its status says it too. Before,
// the 503 said only that no leader was known.
func TestWriteRefusedForAFullDiskSaysSo(t *testing.T) {
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	logs := &fullLogs{InmemStore: raft.NewInmemStore()}
	node, err := cluster.New(cluster.Config{
		NodeID: "full", InMemory: true, Bootstrap: true, LogStore: logs,
		// An election every 1 to 2 s: the request below comes between.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: time.Second,
	}, a.fsm, a.log.Named("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	a.node = node
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := node.LeaderContext(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	logs.full.Store(true)
	if _, err := node.Apply(context.Background(), []byte("x")); err == nil {
		t.Fatal("apply on a full disk succeeded")
	}
	rec := httptest.NewRecorder()
	a.forwardWrites(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/queue/pause", nil))
	if body := rec.Body.String(); rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader is known") ||
		!strings.Contains(body, "cannot write the Raft log store in its data_dir") || !strings.Contains(body, "the disk is full") {
		t.Fatalf("the write: %d %s; want 503 saying the disk is full", rec.Code, body)
	}
	if st, err := node.Status(); err != nil || !strings.Contains(st.DataDirError, "the disk is full") {
		t.Fatalf("node status: %v %q", err, st.DataDirError)
	}
}
