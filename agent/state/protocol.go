package state

import (
	"errors"
	"fmt"
)

// Protocol is the state protocol this build speaks: the command types and
// snapshot sections it can apply. Servers advertise it to each other
// (agent/cluster's ServerInfo.StateProtocol), and a leader writes a command
// of a later protocol only once every server of the configuration
// advertises that protocol or a later one (CommandProtocol), so that in a
// rolling upgrade no server meets an entry it cannot apply.
//
// Every command type and section that exists today is protocol 1. A
// release that adds one bumps Protocol and lists the new type in
// typeProtocol; a new section is written only once state that only the new
// commands make is there, so it follows their protocol.
//
// A field added to a command's or a stored record's JSON is neither: an
// older build decodes the command, drops the field without a word
// (encoding/json ignores names it does not know) and applies the rest, so
// its state, and every snapshot it writes, lacks the field for good, even
// once it is upgraded and restores that snapshot. A field may be added so
// only where its absence means what it meant before the field existed
// (Intent.NodeCreated, Intent.Before, ScaleAction.TookEffect: zero in
// records written before them); one whose absence would make a leader act
// otherwise needs a new command type, and so a new protocol. The same holds
// for what a command keeps: the scale actions past MaxScaleActions keep
// each block's last successful one (trimScales), which an older build
// forgets, as every build did before; its absence means what it meant then
// (the block's count starts from its min).
const Protocol = 1

// typeProtocol names the command types introduced after protocol 1 and the
// protocol that introduced each; every other known type is protocol 1.
var typeProtocol = map[CommandType]int{}

// knownType reports whether this build can decode and apply t.
func knownType(t CommandType) bool {
	switch t {
	case TypeAppendSamples, TypeMarkStale, TypeDropSeries:
		return true
	}
	_, act := actTypeNames[t]
	_, mem := membershipTypeNames[t]
	return act || mem
}

// CommandProtocol returns the state protocol an encoded command needs: the
// protocol that introduced its type. It fails, naming the command, for an
// envelope this build cannot read (a leader never writes what it cannot
// apply itself).
func CommandProtocol(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadEnvelope, len(b))
	}
	if b[0] != envelopeVersion {
		return 0, fmt.Errorf("%w: version %d", ErrBadEnvelope, b[0])
	}
	t := CommandType(b[1])
	if !knownType(t) {
		return 0, fmt.Errorf("%w %d", ErrUnknownCommand, uint8(t))
	}
	if p, ok := typeProtocol[t]; ok {
		return p, nil
	}
	return 1, nil
}

// ErrOlderThanLog is wrapped by the error a state machine stops with when
// the log holds an entry, or a snapshot a section, that this build does not
// know: a newer server wrote it, and applying the entries after it without
// it would give this server state that differs from the cluster's.
var ErrOlderThanLog = errors.New("this server is older than the cluster's log: upgrade it to the release the other servers run")

// HaltError says why a state machine stopped applying the log (FSM.Halted).
type HaltError struct {
	// Index is the entry it could not apply, or the index of the snapshot
	// it could not restore.
	Index uint64
	// What names it: "entry of type command(99)" or "snapshot section
	// \"x\"".
	What string
	// Applied is the last entry applied: the state is the cluster's as of
	// that entry.
	Applied uint64
	Err     error
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("state: stopped applying the log at index %d: this build cannot read its %s (%v); the state is the cluster's as of index %d: %v",
		e.Index, e.What, e.Err, e.Applied, ErrOlderThanLog)
}

func (e *HaltError) Unwrap() []error { return []error{ErrOlderThanLog, e.Err} }

// Older describes what a build older than this one did not know, for tests
// of mixed-version clusters (NewOlderFSM): command types and snapshot
// sections it decodes as unknown, exactly as a build without them would.
type Older struct {
	Types    []CommandType
	Sections []string
}

// NewOlderFSM returns a state machine that behaves as an older build's
// would: it treats o's command types and sections as unknown. For tests of
// rolling upgrades only; agents use NewFSM.
func NewOlderFSM(cfg Config, o Older) (*FSM, error) {
	f, err := NewFSM(cfg)
	if err != nil {
		return nil, err
	}
	f.older = &older{types: map[CommandType]bool{}, sections: map[string]bool{}}
	for _, t := range o.Types {
		f.older.types[t] = true
	}
	for _, s := range o.Sections {
		f.older.sections[s] = true
	}
	return f, nil
}

type older struct {
	types    map[CommandType]bool
	sections map[string]bool
}

func (o *older) knowsSection(name string) bool { return o == nil || !o.sections[name] }

func (o *older) knowsType(b []byte) bool {
	return o == nil || len(b) < 2 || !o.types[CommandType(b[1])]
}

// tooNew reports whether err, Decode's answer for b, means a newer build
// wrote b: an unknown type, or an envelope version later than this one's.
// An earlier version was never written (envelope version 1 is the first),
// so such an entry is malformed, not newer.
func tooNew(b []byte, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUnknownCommand):
		return true
	case errors.Is(err, ErrBadEnvelope):
		return len(b) >= 2 && b[0] > envelopeVersion
	}
	return false
}

// ErrUnknownSection is wrapped by Restore's error for an intact snapshot
// with a section this build does not know and may not skip: a newer server
// wrote it.
var ErrUnknownSection = errors.New("state: snapshot section unknown to this build")
