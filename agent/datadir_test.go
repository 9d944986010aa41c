package agent

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestDataDirErrorNamesTheSetting: when the server cannot create its
// data_dir or node-id at start (what preflight.Check could not foresee
// without writing), its error names data_dir, its value and the file and
// line that set it. Before, it said "agent: cluster: data dir: mkdir
// /proc/foreshape: no such file or directory", naming neither.
func TestDataDirErrorNamesTheSetting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc, where no directory can be made")
	}
	path := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(path, []byte("log_level = \"warn\"\ndata_dir = \"/proc/foreshape\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.NewLoader().Load(config.Default(), path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	// Past preflight.Check, which refuses this data_dir before the start.
	a := &Agent{log: hclog.NewNullLogger()}
	_, err := a.startNode(cfg, &preflight.Start{Name: "s1"})
	want := "cannot use data_dir /proc/foreshape (set by " + path + ":2,12-29): "
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start with data_dir under /proc: %v; want an error saying %q", err, want)
	}
}

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
	// An election every 1 to 2 s: the request below comes between.
	a, node, logs := leaderOnFullableDisk(t, &buf, time.Second)
	logs.full.Store(true)
	if _, err := node.Apply(context.Background(), []byte("x")); err == nil {
		t.Fatal("apply on a full disk succeeded")
	}
	// Between its elections it knows no leader. Each election it wins
	// it leads until its first append fails: a write that comes then (on
	// a loaded machine the next election may come first) is passed to
	// the handler behind, here a 404, and is asked again.
	var rec *httptest.ResponseRecorder
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		rec = httptest.NewRecorder()
		a.forwardWrites(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/queue/pause", nil))
		if rec.Code != http.StatusNotFound || time.Now().After(deadline) {
			break
		}
		t.Logf("the write came while the server led again (%d); asking again", rec.Code)
	}
	if body := rec.Body.String(); rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader is known") ||
		!strings.Contains(body, "cannot write the Raft log store in its data_dir") || !strings.Contains(body, "the disk is full") {
		t.Fatalf("the write: %d %s; want 503 saying the disk is full", rec.Code, body)
	}
	if st, err := node.Status(); err != nil || !strings.Contains(st.DataDirError, "the disk is full") {
		t.Fatalf("node status: %v %q", err, st.DataDirError)
	}
}

// TestFullDiskRefusalsAnd503: a write the leader could not store because
// its disk is full comes back from the agent's applier as unavailable (the
// API's 503: not committed, worth trying again once the disk has room),
// where it was an unclassified error (500); and the lines its leader loop
// logs once a term are DEBUG while appends fail (a lone server leads and
// loses its term every heartbeat timeout then), else INFO.
func TestFullDiskRefusalsAnd503(t *testing.T) {
	var buf syncbuf.Buffer
	a, node, logs := leaderOnFullableDisk(t, &buf, 100*time.Millisecond)
	a.termLog().Info("a term line while the disk has room")
	logs.full.Store(true)
	_, err := applier{node}.Apply(context.Background(), state.SetQueuePaused{Paused: true, At: time.Now().UTC(), By: "test"})
	if !errors.Is(err, api.ErrUnavailable) || !errors.Is(err, cluster.ErrDataDir) || !strings.Contains(err.Error(), "the disk is full") {
		t.Fatalf("apply on a full disk: %v; want unavailable (503) saying the disk is full", err)
	}
	a.termLog().Info("a term line while appends fail")
	if got := buf.String(); !strings.Contains(got, "a term line while the disk has room") || strings.Contains(got, "a term line while appends fail") {
		t.Fatalf("log:\n%s\nwant the term line at INFO only while the disk has room", got)
	}
}

// leaderOnFullableDisk is a forwarding agent whose in-memory Raft node
// leads alone over a log store the test fills (logs.full), with raft's
// heartbeat, election and lease timeouts all timeout.
func leaderOnFullableDisk(t *testing.T, buf *syncbuf.Buffer, timeout time.Duration) (*Agent, *cluster.Node, *fullLogs) {
	t.Helper()
	a := forwardingAgent(t, buf)
	logs := &fullLogs{InmemStore: raft.NewInmemStore()}
	node, err := cluster.New(cluster.Config{
		NodeID: "full", InMemory: true, Bootstrap: true, LogStore: logs,
		HeartbeatTimeout: timeout, ElectionTimeout: timeout, LeaderLeaseTimeout: timeout,
	}, a.fsm, a.log.Named("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	a.node = node
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := node.LeaderContext(); ok {
			return a, node, logs
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
}

// TestDataDirStoreErrorNamesTheSetting: a data_dir whose raft.db cannot be
// opened (here a directory in its place, which preflight.Check does not
// look for) fails the start naming data_dir, its file and line, and the
// file once: it said "agent: raft: cluster: open …/raft.db: open
// …/raft.db: is a directory", naming neither.
func TestDataDirStoreErrorNamesTheSetting(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "raft.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte("data_dir = \""+data+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.NewLoader().Load(config.Default(), path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	cfg.Server.RaftPort = freePort(t)
	fsm, err := state.NewFSM(state.Config{Profiles: state.DefaultProfiles()})
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{log: hclog.NewNullLogger(), fsm: fsm, opts: Options{Version: "test"}}
	_, err = a.startNode(cfg, &preflight.Start{Name: "s1"})
	want := "cannot use data_dir " + data + " (set by " + path + ":1,"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "raft.db") != 1 {
		t.Fatalf("start with raft.db a directory: %v; want an error saying %q and naming raft.db once", err, want)
	}
}
