package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The data directory's disk. Every write Raft makes to this server's
// stores (log appends and compactions to raft.db, the term and vote in
// its stable store, snapshots into snapshots/) goes through the stores'
// wrappers below, which tell diskHealth how it went. When writes start to
// fail (a full disk, a read-only one, I/O errors) the server logs it once,
// at ERROR, naming the file and the cause (once more should another kind
// of write start failing: snapshots often fail first, BoltDB reusing the
// pages it freed for appends a while longer), and once at INFO when a
// write as large as the smallest that failed succeeds again (a nearly
// full disk takes a new term's first entry but not a batch of samples).
// Status and the server's answers to the leader's health checks
// (ServerInfo.DataDirError) say it meanwhile; Ready, while log or stable
// writes fail; Apply's error, while appends fail.
//
// What Raft does about it is Raft's (v1.7.3): a leader whose log append
// fails answers that command with the error and steps down; a follower
// whose append fails rejects the entries, and the leader sends them
// again, backing off up to about 10 s; a failed snapshot is tried again
// at the next check. So that the outage is one line and not one per
// retry, Raft's lines about those failures, and the elections a single
// server then stands every heartbeat timeout only to step down again, are
// logged at DEBUG while it lasts (diskQuiet, stoppingLogger).
//
// One write Raft does not survive: a server that cannot record a new term
// in its stable store panics (raft's setCurrentTerm). BoltDB rewrites
// pages of raft.db it has freed, so on a full disk that write mostly
// succeeds; on a read-only disk or one that returns I/O errors it does
// not, and the server stops at its next election.

// ErrDataDir is wrapped by Apply's error when the command was refused
// because this server could not write it to its Raft log.
var ErrDataDir = errors.New("cluster: this server cannot write to its data_dir")

// diskKind is a kind of write, from the smallest: a success ends the
// failures of the smaller kinds, and of its own when it is as large as
// the smallest that failed (ok).
type diskKind int

const (
	diskStable   diskKind = iota // the term, the vote, the cluster ID
	diskLog                      // log appends and compactions
	diskSnapshot                 // a whole snapshot
)

// diskHealth follows this server's writes to its data directory.
type diskHealth struct {
	log hclog.Logger
	now func() time.Time
	// closing is done once the node closes: stores closed under raft's
	// feet fail, which says nothing about the disk.
	closing interface{ Err() error }

	mu sync.Mutex
	// failing holds, per kind, the last failure; empty while writes work.
	failing map[diskKind]diskFailure
	// since is when the outage began; failed counts its failed writes;
	// told, the kinds it logged.
	since  time.Time
	failed int
	told   map[diskKind]bool
}

type diskFailure struct {
	path string
	err  error
	// size is how many bytes the failed write carried: a smaller one
	// that succeeds does not end the failure (a disk with room for a
	// barrier's entry may have none for a batch of samples).
	size int
}

func newDiskHealth(log hclog.Logger, now func() time.Time, closing interface{ Err() error }) *diskHealth {
	return &diskHealth{log: log, now: now, closing: closing, failing: map[diskKind]diskFailure{}, told: map[diskKind]bool{}}
}

// diskWhat says what a server does while writes of kind fail.
var diskWhat = map[diskKind]string{
	diskLog:      "takes no new entries and cannot lead",
	diskStable:   "cannot record a new term or vote (raft stops the server when it cannot record a new term)",
	diskSnapshot: "writes no snapshot, so raft.db keeps every entry and grows while there is room",
}

// diskOrder is the order in which failures are told: the one that stops
// the server most first.
var diskOrder = []diskKind{diskLog, diskStable, diskSnapshot}

// diskError reports whether err is a disk's failure: full, read-only,
// I/O errors.
func diskError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EIO)
}

// DiskCause says in words what err, a failed write to the data_dir's
// disk, means for it ("the disk is full", "is read-only", "returns I/O
// errors"), and false for an error that is no disk's failure: for the
// agent's own files in the data_dir (a snapshot restore's upload).
func DiskCause(err error) (string, bool) {
	if !diskError(err) {
		return "", false
	}
	return diskCause(err), true
}

// diskCause says in words what err, a failed write, means for the disk.
func diskCause(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the disk is full"
	case errors.Is(err, syscall.EROFS):
		return "the disk is read-only"
	case errors.Is(err, syscall.EIO):
		return "the disk returns I/O errors"
	}
	return "writes fail"
}

// fail records that a write of kind and size to path failed with err;
// the first failure of an outage is logged at ERROR.
func (h *diskHealth) fail(kind diskKind, path string, err error, size int) {
	if err == nil || h.closing.Err() != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first := len(h.failing) == 0
	// The smallest write that failed, not counting those that carry no
	// data (a new term's first entry, a barrier): once one as large
	// succeeds, those work again.
	if f, ok := h.failing[kind]; ok && f.size > 0 && (size == 0 || f.size < size) {
		size = f.size
	}
	h.failing[kind] = diskFailure{path: path, err: err, size: size}
	h.failed++
	if !first && !h.told[kind] {
		h.told[kind] = true
		h.log.Error("cannot write to data_dir: "+diskCause(err), "path", path, logKeyError, err,
			"then", "this server now also "+diskWhat[kind])
	}
	if !first {
		return
	}
	h.told = map[diskKind]bool{kind: true}
	h.since = h.now()
	h.log.Error("cannot write to data_dir: "+diskCause(err), "path", path, logKeyError, err,
		"then", "while this lasts this server "+diskWhat[kind]+"; every entry it acknowledged is kept; "+
			"it logs once more when it can write again, and once if another kind of write fails (Raft's lines about the failures are DEBUG meanwhile)")
}

// ok records that a write of kind and size succeeded: the failures of
// smaller kinds are over, and that of kind when none as small failed; with
// them, once none is left, the outage.
func (h *diskHealth) ok(kind diskKind, size int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failing) == 0 {
		return
	}
	for k, f := range h.failing {
		if k < kind || k == kind && size >= f.size {
			delete(h.failing, k)
		}
	}
	if len(h.failing) > 0 {
		return
	}
	h.log.Info("can write to data_dir again", "after", h.now().Sub(h.since).Round(time.Millisecond), "failed_writes", h.failed)
	h.failed = 0
}

// err is the outage's error while one lasts (naming the failure that
// stops the server most, diskOrder), else nil; with kinds, only while a
// write of one of them fails.
func (h *diskHealth) err(kinds ...diskKind) error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range diskOrder {
		if len(kinds) > 0 && !slices.Contains(kinds, k) {
			continue
		}
		if f, ok := h.failing[k]; ok {
			return &DataDirError{Path: f.path, Since: h.since, Err: f.err, what: diskWhat[k]}
		}
	}
	return nil
}

// failingNow reports whether an outage lasts.
func (h *diskHealth) failingNow() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.failing) > 0
}

// DataDirError says that this server's writes to its data directory fail.
// errors.Is(err, ErrDataDir) holds.
type DataDirError struct {
	// Path is the file or directory the last failed write was to.
	Path string
	// Since is when the writes began to fail.
	Since time.Time
	Err   error
	what  string
}

func (e *DataDirError) Error() string {
	return fmt.Sprintf("this server cannot write %s in its data_dir since %s: %s (%v); it %s until it can",
		e.Path, e.Since.UTC().Format(time.RFC3339), diskCause(e.Err), e.Err, e.what)
}

// Is makes errors.Is(err, ErrDataDir) true.
func (e *DataDirError) Is(target error) bool { return target == ErrDataDir }

func (e *DataDirError) Unwrap() error { return e.Err }

// watchedLogs is a LogStore whose writes diskHealth follows.
type watchedLogs struct {
	raft.LogStore
	h    *diskHealth
	path string
}

func (w watchedLogs) StoreLog(l *raft.Log) error {
	return w.StoreLogs([]*raft.Log{l})
}

func (w watchedLogs) StoreLogs(logs []*raft.Log) error {
	err := w.LogStore.StoreLogs(logs)
	size := 0
	for _, l := range logs {
		size += len(l.Data) + len(l.Extensions)
	}
	w.done(err, size)
	return err
}

// DeleteRange counts as a write of no size: it frees room.
func (w watchedLogs) DeleteRange(min, max uint64) error {
	err := w.LogStore.DeleteRange(min, max)
	w.done(err, 0)
	return err
}

func (w watchedLogs) done(err error, size int) {
	if err != nil {
		w.h.fail(diskLog, w.path, err, size)
		return
	}
	w.h.ok(diskLog, size)
}

// watchedStable is a StableStore whose writes diskHealth follows.
type watchedStable struct {
	raft.StableStore
	h    *diskHealth
	path string
}

func (w watchedStable) Set(key, val []byte) error {
	err := w.StableStore.Set(key, val)
	w.done(err)
	return err
}

func (w watchedStable) SetUint64(key []byte, val uint64) error {
	err := w.StableStore.SetUint64(key, val)
	w.done(err)
	return err
}

func (w watchedStable) done(err error) {
	if err != nil {
		w.h.fail(diskStable, w.path, err, 0)
		return
	}
	w.h.ok(diskStable, 0)
}

// watchedSnapshots is a SnapshotStore whose writes diskHealth follows.
type watchedSnapshots struct {
	raft.SnapshotStore
	h    *diskHealth
	path string
	// tmp, for raft's file store in path, removes what a failed Create
	// leaves there; nil for another store.
	tmp *snapshotTmp
}

// snapshotTmp removes the snapshot directories a failed Create of raft's
// file store leaves. Raft (v1.7.3) creates NAME.tmp, then writes its
// meta.json and opens its state file, and returns the error of either
// without removing the directory: on a full disk each snapshot tried (one
// every raft_snapshot_interval) left one, which stayed until the server
// restarted, and raft logged "found temporary snapshot" at WARN for each
// of them at every later snapshot. A sink raft closes or cancels removes
// its own directory.
type snapshotTmp struct {
	log hclog.Logger
	// mu is held across Create, so that no directory is created while
	// the left ones are removed; open are the IDs of the sinks being
	// written (a follower installs the leader's snapshot while its own
	// is written).
	mu   sync.Mutex
	open map[string]bool
}

func newSnapshotTmp(log hclog.Logger) *snapshotTmp {
	return &snapshotTmp{log: log, open: map[string]bool{}}
}

// removeLeft removes every NAME.tmp directory in dir but those of the
// sinks being written. Called with mu held.
func (s *snapshotTmp) removeLeft(dir string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		name, ok := strings.CutSuffix(e.Name(), ".tmp")
		if !e.IsDir() || !ok || s.open[name] {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			s.log.Debug("could not remove the directory of a snapshot that failed", "path", path, logKeyError, err)
			continue
		}
		s.log.Debug("removed the directory of a snapshot that failed", "path", path)
	}
}

func (w watchedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if w.tmp != nil {
		w.tmp.mu.Lock()
		defer w.tmp.mu.Unlock()
	}
	sink, err := w.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		w.h.fail(diskSnapshot, w.path, err, 0)
		if w.tmp != nil {
			w.tmp.removeLeft(w.path)
		}
		return nil, err
	}
	if w.tmp != nil {
		w.tmp.open[sink.ID()] = true
	}
	return &watchedSink{SnapshotSink: sink, w: w}, nil
}

// watchedSink is a snapshot being written.
type watchedSink struct {
	raft.SnapshotSink
	w watchedSnapshots
	// failed is set once a write failed: the sink is then cancelled.
	failed bool
}

// done forgets the sink as being written, and removes its directory when
// closing or cancelling it failed (err): raft's file store leaves NAME.tmp
// when its last flush or its meta.json fails, with what it wrote of the
// state (on a full disk, as much as fitted), until the server restarts.
func (s *watchedSink) done(err error) {
	t := s.w.tmp
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, s.ID())
	if err != nil {
		path := filepath.Join(s.w.path, s.ID()+".tmp")
		if rerr := os.RemoveAll(path); rerr != nil {
			t.log.Debug("could not remove the directory of a snapshot that failed", "path", path, logKeyError, rerr)
		}
	}
}

func (s *watchedSink) Cancel() error {
	err := s.SnapshotSink.Cancel()
	s.done(err)
	return err
}

var _ io.Writer = (*watchedSink)(nil)

func (s *watchedSink) Write(p []byte) (int, error) {
	n, err := s.SnapshotSink.Write(p)
	if err != nil && !s.failed {
		s.failed = true
		s.w.h.fail(diskSnapshot, s.w.path, err, 0)
	}
	return n, err
}

func (s *watchedSink) Close() error {
	err := s.SnapshotSink.Close()
	s.done(err)
	switch {
	case err != nil:
		s.w.h.fail(diskSnapshot, s.w.path, err, 0)
	case !s.failed:
		s.w.h.ok(diskSnapshot, 0)
	}
	return err
}

// diskQuiet lists the lines Raft (and this package) logs over and over
// while this server cannot write, which diskHealth logged once: each failed
// write (quiet during any outage), and the elections a lone server stands,
// wins, and loses again at its first append or its first large one, with
// the leadership this package publishes in between (quiet during an
// outage in which appends failed: a server whose snapshots alone fail
// still leads, and says so).
var diskQuiet = map[string]diskQuietness{
	// raft: the failed writes
	"failed to commit logs":    quietAlways,
	"failed to append to logs": quietAlways,
	"failed to take snapshot":  quietAlways,
	"failed to persist vote":   quietAlways,
	"failed to compact logs":   quietAlways,
	"starting snapshot up to":  quietAlways,
	// raft's file snapshot store
	"creating new snapshot":            quietAlways,
	"failed to make snapshot directly": quietAlways,
	"failed to write metadata":         quietAlways,
	"failed to create state file":      quietAlways,
	"failed to finalize snapshot":      quietAlways,
	"failed to close snapshot":         quietAlways,
	// raft: an election won and lost again at the first write (or, in a
	// cluster, a follower whose appends fail standing again and again
	// while its peers have a leader)
	"heartbeat timeout reached, starting election":           quietAppends,
	"entering candidate state":                               quietAppends,
	"pre-vote successful, starting election":                 quietAppends,
	"pre-vote campaign failed, waiting for election timeout": quietAppends,
	"Election timeout reached, restarting election":          quietAppends,
	"election won":            quietAppends,
	"entering leader state":   quietAppends,
	"entering follower state": quietAppends,
	// raft: a follower whose appends failed lacks the entries the leader
	// goes on sending after them, and says so at each
	"failed to get previous log": quietAppends,
	// this package's side of the same
	"gained leadership; waiting for the state to catch up": quietAppends,
	"lost leadership":                         quietAppends,
	"barrier failed; retrying before leading": quietAppends,
	"leading": quietAppends,
}

// diskQuietness says when a diskQuiet line is DEBUG.
type diskQuietness int

const (
	// quietAlways: during any outage, and whenever its error is a
	// disk's failure (diskFailed).
	quietAlways diskQuietness = iota + 1
	// quietAppends: during an outage in which appends failed.
	quietAppends
)

// quiet reports whether the line msg with args is DEBUG now.
func (h *diskHealth) quiet(msg string, args []any) bool {
	switch diskQuiet[msg] {
	case quietAlways:
		return h.failingNow() || diskFailed(args)
	case quietAppends:
		return h.appendsFailed()
	}
	return false
}

// appendsFailed reports whether an outage lasts in which appends failed
// (they may work again for a while: small ones fit where large ones do
// not).
func (h *diskHealth) appendsFailed() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.failing) > 0 && h.told[diskLog]
}
