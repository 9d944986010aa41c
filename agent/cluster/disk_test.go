package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/hashicorp/raft"
)

// faultyLogs is an in-memory log store whose writes fail, while fail is
// set, as raft-boltdb's do on a disk that is full, read-only or failing:
// with the errno in a *fs.PathError naming raft.db.
type faultyLogs struct {
	*raft.InmemStore
	fail atomic.Value // syscall.Errno; 0 while writes work
	// room, when set, is how many bytes of data a batch that fits may
	// carry while fail is set: larger ones fail (a disk with a few free
	// pages left).
	room atomic.Int64
}

func newFaultyLogs() *faultyLogs {
	s := &faultyLogs{InmemStore: raft.NewInmemStore()}
	s.fail.Store(syscall.Errno(0))
	return s
}

func (s *faultyLogs) set(errno syscall.Errno) { s.fail.Store(errno) }

func (s *faultyLogs) err() error {
	if e := s.fail.Load().(syscall.Errno); e != 0 {
		return &fs.PathError{Op: "write", Path: "/data/raft.db", Err: e}
	}
	return nil
}

func (s *faultyLogs) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *faultyLogs) StoreLogs(logs []*raft.Log) error {
	size := 0
	for _, l := range logs {
		size += len(l.Data)
	}
	if err := s.err(); err != nil && (s.room.Load() == 0 || int64(size) > s.room.Load()) {
		return err
	}
	return s.InmemStore.StoreLogs(logs)
}

func (s *faultyLogs) DeleteRange(min, max uint64) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.InmemStore.DeleteRange(min, max)
}

// faultySnaps is an in-memory snapshot store whose Create fails with
// fail, when set.
type faultySnaps struct {
	*raft.InmemSnapshotStore
	fail atomic.Value // syscall.Errno
}

func (s *faultySnaps) Create(version raft.SnapshotVersion, index, term uint64, c raft.Configuration, ci uint64, tr raft.Transport) (raft.SnapshotSink, error) {
	if e, _ := s.fail.Load().(syscall.Errno); e != 0 {
		return nil, &fs.PathError{Op: "write", Path: "/data/snapshots/meta.json", Err: e}
	}
	return s.InmemSnapshotStore.Create(version, index, term, c, ci, tr)
}

// diskServer is one server of diskServers.
type diskServer struct {
	node  *cluster.Node
	fsm   *listFSM
	logs  *faultyLogs
	snaps *faultySnaps
	log   *logBuffer
	// gone, once set, makes the server's answers to health checks fail,
	// as a crashed server's do (crash).
	gone atomic.Bool
	// cut disconnects the other servers' transports from this one's.
	cut func()
}

// crash stops s's Raft as a killed process stops, and its answers to the
// leader's health checks.
func (s *diskServer) crash(t *testing.T) {
	t.Helper()
	s.gone.Store(true)
	if err := cluster.Crash(s.node); err != nil {
		t.Fatal(err)
	}
	s.cut()
}

// diskServers starts n in-memory servers of one cluster, each with a log
// store that can be made to fail and its own log buffer, and waits for a
// leader.
func diskServers(t *testing.T, n int) []*diskServer {
	t.Helper()
	return diskCluster(t, n, n, nil)
}

// diskCluster is diskServers whose first voters servers are voters and
// the rest spares (non-voters that ask to vote), with server.voters
// voters; tweak, when not nil, adjusts each server's configuration.
func diskCluster(t *testing.T, n, voters int, tweak func(i int, c *cluster.Config)) []*diskServer {
	t.Helper()
	var trans []*raft.InmemTransport
	for i := range n {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("disk%d", i)))
		trans = append(trans, tr)
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	var servers []cluster.Server
	for i, tr := range trans {
		servers = append(servers, cluster.Server{ID: fmt.Sprintf("disk%d", i), Address: string(tr.LocalAddr()), Voter: i < voters})
	}
	var out []*diskServer
	for i := range n {
		s := &diskServer{fsm: &listFSM{}, logs: newFaultyLogs(), snaps: &faultySnaps{InmemSnapshotStore: raft.NewInmemSnapshotStore()}, log: &logBuffer{}}
		cfg := clustertest.Config(fmt.Sprintf("disk%d", i))
		cfg.Transport, cfg.LogStore, cfg.SnapshotStore, cfg.Voters = trans[i], s.logs, s.snaps, voters
		cfg.Probe = func(ctx context.Context, id, address string) (cluster.ServerInfo, error) {
			for _, o := range out {
				if st, err := o.node.Status(); err == nil && st.Address == address && !o.gone.Load() {
					return o.node.Info(), nil
				}
			}
			return cluster.ServerInfo{}, fmt.Errorf("no server at %s", address)
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		// Once it stops, the others' calls to it fail at once, as a
		// closed port refuses a connection, instead of each waiting out
		// the in-memory transport's 500 ms timeout: a node closing with a
		// call to a stopped one pending (raft waits for its replication
		// streams) took a second or more.
		s.cut = func() {
			for j, tr := range trans {
				if j != i {
					tr.Disconnect(trans[i].LocalAddr())
				}
			}
		}
		node, err := cluster.New(cfg, s.fsm, teeLogger(t, cfg.NodeID, s.log))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			node.Close()
			s.cut()
		})
		s.node = node
		out = append(out, s)
	}
	if err := out[0].node.Bootstrap(servers...); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, nodesOf(out)...)
	return out
}

func nodesOf(servers []*diskServer) []*cluster.Node {
	var nodes []*cluster.Node
	for _, s := range servers {
		nodes = append(nodes, s.node)
	}
	return nodes
}

// loudLines returns the lines at INFO, WARN or ERROR of log after its
// first from bytes.
func loudLines(log string, from int) []string {
	var out []string
	for _, line := range strings.Split(log[from:], "\n") {
		if strings.Contains(line, "[INFO]") || strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
			out = append(out, line)
		}
	}
	return out
}

// TestFullDiskLogsOncePerOutage: a single server whose log appends fail
// (ENOSPC, as on a full disk) refuses the write it could not store, and
// keeps standing for election and stepping down again at its first
// append, every heartbeat timeout; its log says so in one ERROR line that
// names the file, and once more at INFO when appends work again, after
// which it leads by itself, with every write it acknowledged and none it
// refused. Before, each election logged about nine lines (raft's
// "failed to commit logs" among them) — at the default timeouts about six
// lines a second, measured with a real agent on a full tmpfs.
func TestFullDiskLogsOncePerOutage(t *testing.T) {
	s := diskServers(t, 1)[0]
	for _, v := range []string{"a", "b"} {
		if _, err := s.node.Apply(context.Background(), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.node.Status()
	if err != nil {
		t.Fatal(err)
	}
	mark := len(s.log.String())
	s.logs.set(syscall.ENOSPC)
	if _, err := s.node.Apply(context.Background(), []byte("refused")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("apply on a full disk: %v; want an error that wraps ENOSPC", err)
	}
	// It stands for election and steps down again, every 50 ms here.
	clustertest.Eventually(t, "ten elections on the full disk", func() bool {
		st, err := s.node.Status()
		return err == nil && st.Term >= before.Term+10
	})
	loud := loudLines(s.log.String(), mark)
	if len(loud) != 1 || !strings.Contains(loud[0], "[ERROR]") || !strings.Contains(loud[0], "cannot write to data_dir: the disk is full") ||
		!strings.Contains(loud[0], "path=\"the Raft log store\"") || !strings.Contains(loud[0], "no space left on device") {
		t.Fatalf("the outage logged %d lines at INFO or above; want one ERROR naming the store and the cause:\n%s", len(loud), strings.Join(loud, "\n"))
	}

	mark = len(s.log.String())
	s.logs.set(0)
	// Retried while the node steps down from the term it lost at the
	// refused write, as a client does.
	applyToLeader(t, []*cluster.Node{s.node}, []byte("written after"))
	want := []string{"a", "b", "written after"}
	waitValues(t, s.fsm, want)
	if got := s.fsm.Values(); !slices.Equal(got, want) {
		t.Fatalf("values %q; want the acknowledged %q and not the refused one", got, want)
	}
	if again := strings.Count(s.log.String()[mark:], "can write to data_dir again"); again != 1 {
		t.Fatalf("logged %d times that it can write again; want once:\n%s", again, s.log.String()[mark:])
	}
}

// TestLeaderWithFullDiskStepsDown: in a cluster of three, a leader whose
// log appends fail refuses the write, steps down (raft does so when its
// own append fails), and another server leads and takes writes while the
// first stays a follower that rejects every entry; the first logs the
// outage once (ERROR) and nothing more at WARN or ERROR, and once it can
// write again it takes the entries it missed: every server ends with
// every acknowledged write and none refused.
func TestLeaderWithFullDiskStepsDown(t *testing.T) {
	servers := diskServers(t, 3)
	nodes := nodesOf(servers)
	applyToLeader(t, nodes, []byte("a"))
	var full *diskServer
	for _, s := range servers {
		if s.node.IsLeader() {
			full = s
		}
	}
	mark := len(full.log.String())
	full.logs.set(syscall.ENOSPC)
	if _, err := full.node.Apply(context.Background(), []byte("refused")); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("apply on the leader with a full disk: %v; want an error that wraps ENOSPC", err)
	}
	var rest []*cluster.Node
	for _, s := range servers {
		if s != full {
			rest = append(rest, s.node)
		}
	}
	want := []string{"a"}
	for i := range 10 {
		v := fmt.Sprintf("v%d", i)
		applyToLeader(t, rest, []byte(v))
		want = append(want, v)
	}
	if full.node.IsLeader() {
		t.Fatal("the server with the full disk leads")
	}
	// Its log stays as it was, it rejects what the leader sends.
	time.Sleep(500 * time.Millisecond)
	if got := full.fsm.Values(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("the server with the full disk applied %q", got)
	}
	var noisy []string
	for _, l := range loudLines(full.log.String(), mark) {
		// Another server's election (a follower that missed heartbeats
		// on a loaded machine) is refused at WARN by raft on every
		// server: not this server's outage.
		if strings.Contains(l, "rejecting pre-vote request") || strings.Contains(l, "rejecting vote request") {
			continue
		}
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]") {
			noisy = append(noisy, l)
		}
	}
	if len(noisy) != 1 || !strings.Contains(noisy[0], "cannot write to data_dir: the disk is full") {
		t.Fatalf("the server with the full disk logged %d lines at WARN or ERROR; want the outage's one:\n%s", len(noisy), strings.Join(noisy, "\n"))
	}

	full.logs.set(0)
	applyToLeader(t, rest, []byte("after"))
	want = append(want, "after")
	for i, s := range servers {
		waitValues(t, s.fsm, want)
		if got := s.fsm.Values(); !slices.Equal(got, want) {
			t.Fatalf("server %d holds %q; want %q", i, got, want)
		}
	}
	if !strings.Contains(full.log.String()[mark:], "can write to data_dir again") {
		t.Fatal("the server did not log that it can write again")
	}
}

// TestFailingDiskSaysSo: while a server's log appends fail, the write it
// could not store is refused with an error that wraps ErrDataDir and
// says what fails (full, read-only, I/O errors) and that the command was
// not committed; Ready answers not ready, and Status, why; both clear by
// themselves once it can write again. Before, the refused write's error
// was raft-boltdb's alone (through raft's log cache, `unable to store logs
// within log store, err: "write …/raft.db: no space left on device"`,
// answered 500 by the API), and Ready and Status said only that no leader
// was known.
func TestFailingDiskSaysSo(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		cause string
	}{
		{syscall.ENOSPC, "the disk is full"},
		{syscall.EROFS, "the disk is read-only"},
		{syscall.EIO, "the disk returns I/O errors"},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			s := diskServers(t, 1)[0]
			s.logs.set(tc.errno)
			_, err := s.node.Apply(context.Background(), []byte("refused"))
			var derr *cluster.DataDirError
			if !errors.Is(err, cluster.ErrDataDir) || !errors.As(err, &derr) || !errors.Is(err, tc.errno) ||
				!strings.Contains(err.Error(), "the command was not committed") || !strings.Contains(err.Error(), tc.cause) ||
				!strings.Contains(err.Error(), "the Raft log store") {
				t.Fatalf("apply: %v; want an ErrDataDir saying %q, naming the store, and that the command was not committed", err, tc.cause)
			}
			if err := s.node.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot write the Raft log store in its data_dir") || !strings.Contains(err.Error(), tc.cause) {
				t.Fatalf("ready: %v; want not ready because it cannot write", err)
			}
			st, err := s.node.Status()
			if err != nil || !strings.Contains(st.DataDirError, tc.cause) || !strings.Contains(st.DataDirError, "takes no new entries") {
				t.Fatalf("status: %v, data dir %q; want what fails", err, st.DataDirError)
			}
			if got := s.fsm.Values(); len(got) != 0 {
				t.Fatalf("applied %q", got)
			}

			// It says it can write again once a write as large as the
			// refused one succeeds.
			s.logs.set(0)
			// Retried while the node steps down from the term it lost at the
			// refused write, as a client does.
			applyToLeader(t, []*cluster.Node{s.node}, []byte("accepted"))
			if err := s.node.Ready(context.Background()); err != nil {
				t.Fatalf("not ready once it can write: %v", err)
			}
			if st, err := s.node.Status(); err != nil || st.DataDirError != "" {
				t.Fatalf("status once it can write: %v, data dir %q; want none", err, st.DataDirError)
			}
		})
	}
}

// TestSnapshotsFailingAlone: on a disk with room for log appends but not
// for a snapshot (BoltDB reuses the pages of raft.db it freed; measured on
// a full tmpfs, appends went on for 2 s after a snapshot failed), the
// server logs it once and keeps leading and taking writes, ready, with
// Status saying that it writes no snapshot; when its appends fail too it
// says so in one more line, and Apply's error and Ready name the log; it
// logs that it can write again only once a snapshot succeeds.
func TestSnapshotsFailingAlone(t *testing.T) {
	s := diskServers(t, 1)[0]
	if _, err := s.node.Apply(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	mark := len(s.log.String())
	s.snaps.fail.Store(syscall.ENOSPC)
	if err := s.node.Snapshot(); err == nil {
		t.Fatal("a snapshot on a full disk succeeded")
	}
	if _, err := s.node.Apply(context.Background(), []byte("b")); err != nil {
		t.Fatalf("a write while only snapshots fail: %v", err)
	}
	if err := s.node.Ready(context.Background()); err != nil {
		t.Fatalf("not ready while only snapshots fail: %v", err)
	}
	if st, _ := s.node.Status(); !strings.Contains(st.DataDirError, "writes no snapshot") || !strings.Contains(st.DataDirError, "the Raft snapshot store") {
		t.Fatalf("status while snapshots fail: %q", st.DataDirError)
	}
	if err := s.node.Snapshot(); err == nil {
		t.Fatal("a second snapshot on a full disk succeeded")
	}
	// Raft says it starts the first snapshot before it fails.
	loud := loudLines(s.log.String(), mark)
	if len(loud) > 0 && strings.Contains(loud[0], "starting snapshot up to") {
		loud = loud[1:]
	}
	if len(loud) != 1 || !strings.Contains(loud[0], "cannot write to data_dir: the disk is full") || !strings.Contains(loud[0], "writes no snapshot") {
		t.Fatalf("snapshots failing logged %d lines at INFO or above; want one:\n%s", len(loud), strings.Join(loud, "\n"))
	}

	mark = len(s.log.String())
	s.logs.set(syscall.ENOSPC)
	_, err := s.node.Apply(context.Background(), []byte("refused"))
	if !errors.Is(err, cluster.ErrDataDir) || !strings.Contains(err.Error(), "the Raft log store") || !strings.Contains(err.Error(), "takes no new entries") {
		t.Fatalf("apply once appends fail too: %v; want it to name the log store", err)
	}
	if err := s.node.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "takes no new entries") {
		t.Fatalf("ready once appends fail too: %v", err)
	}
	loud = loudLines(s.log.String(), mark)
	if len(loud) != 1 || !strings.Contains(loud[0], "now also takes no new entries") {
		t.Fatalf("appends failing too logged %d lines at INFO or above; want one:\n%s", len(loud), strings.Join(loud, "\n"))
	}

	mark = len(s.log.String())
	s.logs.set(0)
	// Retried while the node steps down from the term it lost at the
	// refused write, as a client does.
	applyToLeader(t, []*cluster.Node{s.node}, []byte("c"))
	if strings.Contains(s.log.String()[mark:], "can write to data_dir again") {
		t.Fatal("logged that it can write again while snapshots still fail")
	}
	s.snaps.fail.Store(syscall.Errno(0))
	if err := s.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(s.log.String()[mark:], "can write to data_dir again"); n != 1 {
		t.Fatalf("logged %d times that it can write again once a snapshot succeeded; want once", n)
	}
	if st, _ := s.node.Status(); st.DataDirError != "" {
		t.Fatalf("status once it can write: %q", st.DataDirError)
	}
	waitValues(t, s.fsm, []string{"a", "b", "c"})
}

// TestPartlyFullDiskLogsOnce: on a disk with room for small appends only
// (a new term's first entry, a barrier) but not for the leader's larger
// writes, a lone server leads, fails its first large write, steps down,
// and is elected again, every heartbeat timeout; that is one ERROR line
// for the whole outage, and no line each time it leads, nor one saying it
// can write again each time a small append succeeds: that comes once, when
// a write as large as the smallest that failed succeeds. Measured with a
// real agent restarted on a full tmpfs: its collect cycle's sample batch
// failed, each term logged four lines (leading, collection failed,
// leadership ended) every 1.5 s.
func TestPartlyFullDiskLogsOnce(t *testing.T) {
	s := diskServers(t, 1)[0]
	large := []byte(strings.Repeat("s", 400))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var failed atomic.Int64
	go func() {
		// The leader's work: a large write each term.
		_ = s.node.RunLeaderLoop(ctx, func(lctx context.Context) {
			if _, err := s.node.Apply(lctx, large); err != nil {
				failed.Add(1)
			}
			<-lctx.Done()
		})
	}()
	waitValues(t, s.fsm, []string{string(large)})
	mark := len(s.log.String())
	s.logs.room.Store(100)
	s.logs.set(syscall.ENOSPC)
	before, _ := s.node.Status()
	if _, err := s.node.Apply(context.Background(), large); err == nil {
		t.Fatal("a large write on a nearly full disk succeeded")
	}
	clustertest.Eventually(t, "ten terms led and lost on the nearly full disk", func() bool {
		return failed.Load() >= 10
	})
	if st, _ := s.node.Status(); st.Term < before.Term+10 {
		t.Fatalf("term %d, from %d", st.Term, before.Term)
	}
	loud := loudLines(s.log.String(), mark)
	if len(loud) != 1 || !strings.Contains(loud[0], "cannot write to data_dir: the disk is full") {
		t.Fatalf("the outage logged %d lines at INFO or above; want one:\n%s", len(loud), strings.Join(loud, "\n"))
	}

	mark = len(s.log.String())
	s.logs.set(0)
	clustertest.Eventually(t, "the server to say it can write again", func() bool {
		return strings.Contains(s.log.String()[mark:], "can write to data_dir again")
	})
	if st, _ := s.node.Status(); st.DataDirError != "" {
		t.Fatalf("status once it can write: %q", st.DataDirError)
	}
}
