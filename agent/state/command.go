package state

import (
	"errors"
	"fmt"
	"time"
)

// CommandType identifies a command in the envelope. Values are part of the
// log format: never reuse or renumber one.
//
//	1–15   series store
//	16–31  migration queue (actcmd.go)
//	32–47  reservations, scale actions and estimates (actcmd.go)
//	48–63  decisions and intents (actcmd.go)
//	64–79  cluster membership: servers and client agents (membership.go)
type CommandType uint8

// Series store commands.
const (
	TypeAppendSamples CommandType = 1
	TypeMarkStale     CommandType = 2
	TypeDropSeries    CommandType = 3
)

func (t CommandType) String() string {
	switch t {
	case TypeAppendSamples:
		return "append_samples"
	case TypeMarkStale:
		return "mark_stale"
	case TypeDropSeries:
		return "drop_series"
	}
	if n, ok := actTypeNames[t]; ok {
		return n
	}
	if n, ok := membershipTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// envelopeVersion is the version byte every encoded command starts with.
const envelopeVersion = 1

// Errors Apply returns (as its response value) for entries it cannot apply.
// The entry changes nothing, on every node alike.
var (
	ErrUnknownCommand   = errors.New("state: unknown command type")
	ErrBadEnvelope      = errors.New("state: unsupported command envelope")
	ErrMalformedPayload = errors.New("state: malformed command payload")
)

// Command is one change to the replicated state. Encode it with Marshal and
// hand the bytes to the Raft node; every node decodes and applies it alike.
type Command interface {
	// Type is the command's envelope type.
	Type() CommandType
	encode(e *encoder)
}

// Marshal returns the command's envelope: a version byte, the type byte and
// the payload. A command that cannot be encoded (an act command carrying a
// NaN or infinite number, which JSON cannot hold) is an error, so the
// caller fails that one write instead of the server stopping.
func Marshal(c Command) ([]byte, error) {
	e := &encoder{buf: make([]byte, 0, 64)}
	e.u8(envelopeVersion)
	e.u8(byte(c.Type()))
	c.encode(e)
	if e.err != nil {
		return nil, e.err
	}
	return e.buf, nil
}

// Encode is Marshal for a command known to encode; it panics otherwise.
func Encode(c Command) []byte {
	b, err := Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// Decode parses an envelope produced by Encode.
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadEnvelope, len(b))
	}
	if b[0] != envelopeVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadEnvelope, b[0])
	}
	d := &decoder{buf: b[2:]}
	var c Command
	switch t := CommandType(b[1]); t {
	case TypeAppendSamples:
		c = decodeAppendSamples(d)
	case TypeMarkStale:
		c = decodeMarkStale(d)
	case TypeDropSeries:
		c = decodeDropSeries(d)
	default:
		var ok bool
		if c, ok = decodeAct(t, d); !ok {
			if c, ok = decodeMembership(t, d); !ok {
				return nil, fmt.Errorf("%w %d", ErrUnknownCommand, uint8(t))
			}
		}
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformedPayload, CommandType(b[1]), err)
	}
	return c, nil
}

// Result is what Apply returns for a command it applied.
type Result struct {
	// Index is the Raft log index of the entry.
	Index uint64
	Type  CommandType
	// Applied counts what changed: samples kept, series marked stale,
	// series dropped.
	Applied int
	// Rejected counts samples dropped (see Store.Append) or keys that named
	// no series; for act commands, items skipped (an intent opened before,
	// a request that has started).
	Rejected int
	// ID is the ID of the object an act command created or changed: a
	// request, reservation, scale action or intent.
	ID string
}

// AppendSamples adds a batch of samples, aggregated by the leader per series
// and Step, to the series store.
//
// Its payload is hand-rolled binary, because it is the bulk of the log: the
// step, a table of the distinct keys in first-use order, then per sample the
// key's table index, the time as a zig-zag varint delta from the previous
// sample's (0 for the first) in nanoseconds, and the value as 8 bytes. A
// sample of a batch whose samples share a time costs about 10 bytes.
type AppendSamples struct {
	Step    time.Duration
	Samples []Sample
}

// Type implements Command.
func (AppendSamples) Type() CommandType { return TypeAppendSamples }

func (c AppendSamples) encode(e *encoder) {
	e.varint(int64(c.Step))
	idx := make(map[Key]uint64)
	var keys []Key
	for _, s := range c.Samples {
		if _, ok := idx[s.Key]; !ok {
			idx[s.Key] = uint64(len(keys))
			keys = append(keys, s.Key)
		}
	}
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.key(k)
	}
	e.uvarint(uint64(len(c.Samples)))
	var prev int64
	for _, s := range c.Samples {
		t := unixNano(s.Time)
		e.uvarint(idx[s.Key])
		e.varint(t - prev)
		e.f64(s.Value)
		prev = t
	}
}

func decodeAppendSamples(d *decoder) AppendSamples {
	c := AppendSamples{Step: time.Duration(d.varint())}
	keys := make([]Key, d.count(2))
	for i := range keys {
		keys[i] = d.key()
	}
	n := d.count(10)
	if d.err != nil {
		return c
	}
	c.Samples = make([]Sample, n)
	var t int64
	for i := range c.Samples {
		k := d.uvarint()
		t += d.varint()
		v := d.f64()
		if d.err != nil {
			return c
		}
		if k >= uint64(len(keys)) {
			d.fail(fmt.Errorf("sample %d: key index %d of %d", i, k, len(keys)))
			return c
		}
		c.Samples[i] = Sample{Key: keys[k], Time: fromUnixNano(t), Value: v}
	}
	return c
}

// MarkStale marks series stale: their source stopped answering, so forecasts
// must exclude them rather than reuse old points. The leader decides and
// every node agrees. The first sample newer than Since clears the mark.
type MarkStale struct {
	Keys   []Key
	Since  time.Time
	Reason string
}

// Type implements Command.
func (MarkStale) Type() CommandType { return TypeMarkStale }

func (c MarkStale) encode(e *encoder) {
	e.uvarint(uint64(len(c.Keys)))
	for _, k := range c.Keys {
		e.key(k)
	}
	e.varint(unixNano(c.Since))
	e.str(c.Reason)
}

func decodeMarkStale(d *decoder) MarkStale {
	var c MarkStale
	c.Keys = make([]Key, d.count(2))
	for i := range c.Keys {
		c.Keys[i] = d.key()
	}
	c.Since = fromUnixNano(d.varint())
	c.Reason = d.str()
	return c
}

// DropSeries deletes series, for example those of a node that left the
// cluster, freeing their memory.
type DropSeries struct {
	Keys []Key
}

// Type implements Command.
func (DropSeries) Type() CommandType { return TypeDropSeries }

func (c DropSeries) encode(e *encoder) {
	e.uvarint(uint64(len(c.Keys)))
	for _, k := range c.Keys {
		e.key(k)
	}
}

func decodeDropSeries(d *decoder) DropSeries {
	var c DropSeries
	c.Keys = make([]Key, d.count(2))
	for i := range c.Keys {
		c.Keys[i] = d.key()
	}
	return c
}
