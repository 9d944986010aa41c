package state

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// FSM is foreshape's replicated state machine: hashicorp/raft applies every
// committed log entry to it, on every node, in the same order.
//
// Contract (hashicorp/raft's, honoured here):
//   - Apply and ApplyBatch are deterministic: the result depends only on the
//     current state and the entry. They never read the clock, the network,
//     randomness or the environment; times travel inside commands. An entry
//     that cannot be applied changes nothing and returns an error value.
//   - Snapshot runs on raft's FSM goroutine, between Apply calls, and returns
//     quickly: it copies the series pointers (not their rings) and bumps the
//     store's generation so that later changes copy a series' header, and
//     each page of buckets, before writing to it; the act state (queue,
//     reservations, intents, a few thousand small records at most) it
//     copies whole. Persist may then run
//     concurrently with Apply; it reads only the captured, immutable series.
//     A halted FSM (Halted) refuses to be snapshotted.
//   - Restore replaces all state with the snapshot's, or returns an error and
//     keeps the previous state.
//   - Release is always called; it drops the capture.
//
// Goroutines: raft's FSM goroutine is the only writer (Apply, ApplyBatch,
// Snapshot, Restore) and takes the write lock; the snapshot goroutine runs
// Persist without any lock; every other goroutine reads through the exported
// read methods, which take the read lock and return copies.
type FSM struct {
	mu      sync.RWMutex
	cfg     Config
	store   *Store
	act     *actStore
	members *membership
	applied uint64
	// older, for tests only, makes the FSM an older build's (NewOlderFSM).
	older *older
	// halt is set when the FSM met an entry or snapshot section this build
	// does not know (Halted); it then applies nothing more.
	halt atomic.Pointer[HaltError]
}

var (
	_ raft.BatchingFSM = (*FSM)(nil)
	_ raft.FSMSnapshot = (*fsmSnapshot)(nil)
)

// NewFSM returns an empty state machine.
func NewFSM(cfg Config) (*FSM, error) {
	st, err := NewStore(cfg)
	if err != nil {
		return nil, err
	}
	return &FSM{cfg: st.Config(), store: st, act: newActStore(), members: newMembership()}, nil
}

// Apply implements raft.FSM. It returns a Result, or an error value for an
// entry it cannot apply, or nil for entries that are not commands.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(l)
}

// ApplyBatch implements raft.BatchingFSM: the same as Apply for each entry,
// under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *FSM) apply(l *raft.Log) any {
	if h := f.halt.Load(); h != nil {
		return fmt.Errorf("state: apply index %d: not applied: %w", l.Index, h)
	}
	if l.Type != raft.LogCommand {
		if l.Index > f.applied {
			f.applied = l.Index
		}
		return nil
	}
	var cmd Command
	var err error
	if f.older.knowsType(l.Data) {
		cmd, err = Decode(l.Data)
	} else {
		err = fmt.Errorf("%w %d", ErrUnknownCommand, l.Data[1])
	}
	if tooNew(l.Data, err) {
		// A newer server wrote an entry this build cannot read: applying
		// the entries after it without it would make this state differ
		// from the cluster's, so stop here.
		h := &HaltError{Index: l.Index, What: "entry of type " + CommandType(l.Data[1]).String(), Applied: f.applied, Err: err}
		if errors.Is(err, ErrBadEnvelope) {
			h.What = fmt.Sprintf("entry of envelope version %d", l.Data[0])
		}
		f.halt.Store(h)
		return fmt.Errorf("state: apply index %d: %w", l.Index, h)
	}
	if l.Index > f.applied {
		f.applied = l.Index
	}
	if err != nil {
		return fmt.Errorf("state: apply index %d: %w", l.Index, err)
	}
	res := Result{Index: l.Index, Type: cmd.Type()}
	switch c := cmd.(type) {
	case AppendSamples:
		res.Applied, res.Rejected, err = f.store.Append(c.Step, c.Samples)
	case MarkStale:
		res.Applied = f.store.MarkStale(c.Keys, c.Since, c.Reason)
		res.Rejected = len(c.Keys) - res.Applied
	case DropSeries:
		res.Applied = f.store.Drop(c.Keys)
		res.Rejected = len(c.Keys) - res.Applied
	default:
		var ok bool
		if res, err, ok = f.act.apply(cmd, l.Index); !ok {
			if res, err, ok = f.members.apply(cmd, l.Index); !ok {
				err = fmt.Errorf("%w %d", ErrUnknownCommand, uint8(cmd.Type()))
			}
		}
	}
	if err != nil {
		return fmt.Errorf("state: apply index %d: %w", l.Index, err)
	}
	return res
}

// Snapshot implements raft.FSM; see the type's contract. A halted FSM
// (Halted) refuses, with the *HaltError: raft labels a snapshot with the
// last entry it handed the FSM, so one of a halted FSM would claim the
// entries since the halt while holding none of them, and the server,
// upgraded as the halt asks, would restore it and never apply them. Refused,
// raft keeps the log since the last snapshot, and the upgraded server
// replays it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if h := f.halt.Load(); h != nil {
		return nil, fmt.Errorf("state: snapshot: %w", h)
	}
	return &fsmSnapshot{c: f.capture()}, nil
}

// capture takes a capture of the state; see the type's contract.
func (f *FSM) capture() *capture {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.store
	st.gen++
	c := &capture{applied: f.applied, cfg: st.cfg, series: make([]*series, 0, len(st.series)), act: f.act.clone(), members: f.members.clone()}
	for _, sr := range st.series {
		c.series = append(c.series, sr)
	}
	return c
}

// Restore implements raft.FSM: it reads the whole snapshot into new state and
// swaps it in only when the snapshot is intact.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	r, err := restore(rc, f.cfg, f.older)
	if errors.Is(err, ErrUnknownSection) {
		// Intact, but written by a newer server: this one cannot hold the
		// cluster's state any more.
		f.mu.Lock()
		h := &HaltError{Index: r.applied, What: "snapshot's " + r.unknown, Applied: f.applied, Err: err}
		f.halt.Store(h)
		f.mu.Unlock()
		return fmt.Errorf("state: restore: %w", h)
	}
	if err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	f.mu.Lock()
	f.store, f.act, f.members, f.applied = r.store, r.act, r.members, r.applied
	// The snapshot is the cluster's state at its index: whatever stopped
	// this FSM before is behind it.
	f.halt.Store(nil)
	f.mu.Unlock()
	return nil
}

// Halted returns nil while the FSM applies the log, or the *HaltError
// saying where it stopped: at an entry, or a snapshot section, that this
// build does not know (a newer server wrote it). Once halted it applies
// nothing more and its AppliedIndex stays where the cluster's state and
// its own last agreed; a snapshot it can read restores it.
func (f *FSM) Halted() error {
	if h := f.halt.Load(); h != nil {
		return h
	}
	return nil
}

// WriteSnapshot writes the current state in the snapshot format, for backups
// and tests; raft uses Snapshot and Persist instead. A halted FSM writes
// its state as of the last entry it applied, which the snapshot records.
func (f *FSM) WriteSnapshot(w io.Writer) error {
	return f.capture().persist(w)
}

type fsmSnapshot struct{ c *capture }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.c.persist(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("state: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { s.c = &capture{} }

// Config returns the state's configuration.
func (f *FSM) Config() Config { return f.cfg.withDefaults() }

// AppliedIndex returns the index of the last entry applied (or restored).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Len returns the number of series.
func (f *FSM) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Len()
}

// Keys returns every series key in order; see Store.Keys.
func (f *FSM) Keys() []Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Keys()
}

// Info returns a series' freshness and staleness; see Store.Info.
func (f *FSM) Info(key Key) (Info, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Info(key)
}

// Infos returns every series' Info in key order.
func (f *FSM) Infos() []Info {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Infos()
}

// Extent returns how much of a series the store holds; see Store.Extent.
func (f *FSM) Extent(key Key) (Extent, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Extent(key)
}

// Latest returns a series' newest finest-tier point; see Store.Latest.
func (f *FSM) Latest(key Key) (Point, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Latest(key)
}

// Range returns a series on a regular grid; see Store.Range.
func (f *FSM) Range(key Key, step time.Duration, from, to time.Time) (Grid, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store.Range(key, step, from, to)
}
