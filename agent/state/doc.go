// Package state is foreshape's replicated state: the commands that change it,
// the deterministic state machine (FSM) that hashicorp/raft applies them to on
// every node, and its snapshots. It holds the series store and the act
// half's state: the migration queue, reservations, intents, scale actions
// and cooldowns, learned move durations and the bounded decision log (act.go),
// each with its own command types and snapshot section.
//
// It must never read the clock, the network, randomness or the environment,
// and never log: every node applying the same log must reach byte-identical
// state. Times travel inside commands; callers (the agent's collect loop,
// agent/cluster) own time, I/O and logging.
//
// # Commands
//
// An encoded command is an envelope: a version byte (1), a type byte
// (CommandType) and the type's payload. Apply answers an entry it cannot use
// with an error value and never panics. A malformed payload, or a command its
// rules refuse, changes nothing, on every node alike (so does an entry of an
// envelope version below 1, which no build wrote). An entry of a type or
// later envelope version this build does not know was written by a newer
// server: skipping it would leave this node's state silently different from
// the cluster's, so the FSM stops there (FSM.Halted, a *HaltError naming the
// index and type): it applies nothing more until a snapshot it can read
// restores it, and refuses to be snapshotted meanwhile (a snapshot would
// claim the entries it did not apply). Servers advertise the Protocol they
// speak, and a leader writes a command of a later protocol (CommandProtocol)
// only once every server speaks it (agent/cluster), so in a rolling upgrade
// no server meets one; NewOlderFSM models an older build for tests.
//
// Payloads use a small hand-rolled binary encoding (varints, length-prefixed
// strings, little-endian floats; see codec.go) rather than msgpack or JSON:
// sample batches are nearly all of the log, and a batch encodes to about 10
// bytes a sample plus a table of its distinct keys (JSON spends 20 or more on
// a float's text alone), decodes without reflection, and the same command
// always produces the same bytes, with no map ordering or float formatting
// to get right. Later, low-volume commands may use the same encoder or carry
// JSON inside their payload; the envelope does not care.
//
// # Series store
//
// A series (Key "locality:metric") holds one ring per tier (default 1-minute
// buckets for a day, 5-minute for 14 days, hourly for 90 days). Every sample
// folds into the bucket floor(t/step) of every tier, so coarse tiers are exact
// aggregates of the samples, not of finer buckets. A bucket keeps the mean,
// minimum, maximum (float32) and count (uint32): 16 bytes, in pages of 64
// buckets allocated when first written. Rings never grow, so a series costs
// at most Config.BytesPerSeries: with the default tiers 7,632 buckets in 120
// pages, 124,136 bytes with pointers and header (≈121.2 KiB; 10,000 full
// series ≈ 1.16 GiB), plus its key's bytes. It reaches that once 90 days of
// history have filled every ring; a new series starts at about 4.3 KiB. The
// heap measured by TestBytesPerSeries and BenchmarkMemoryPerSeries matches
// both figures within a few percent.
//
// Ordering rules, identical on every node: a sample newer than a tier's
// newest bucket advances the ring and empties the buckets it skips; a sample
// inside the ring merges into its bucket (count-weighted mean, min, max), so
// duplicates and late samples merge rather than replace; a sample older than
// the ring is dropped by that tier (and counted as dropped when every tier
// drops it). NaN, ±Inf and values beyond float32's range are dropped.
//
// Staleness is replicated too: the leader sends MarkStale when a source stops
// answering and every node flags the series; the first sample newer than the
// mark's Since clears it. Reads (Range, Latest, Info) report it, and Range
// returns gaps as NaN on a regular grid, the shape the forecaster takes.
//
// # Profiles
//
// Series that are watched but never forecast need hours of history, not
// months. Config.Profiles give the series whose locality starts with a
// prefix their own tiers (the longest matching prefix wins; other series keep
// Config.Tiers); a series takes its tiers from its key when it is created,
// and Range, Latest, Info, staleness and snapshots work alike for every
// profile. DefaultProfiles give per-node series ("node/<ID>:cpu", :memory,
// :cpu_mhz, :memory_mb) and per-allocation-group series
// ("group/<namespace>/<job>/<group>:…") 1-minute points for 6 hours only:
// 360 buckets in 6 pages, at most 6,448 bytes a series
// (Profile.BytesPerSeries, ≈6.3 KiB; TestProfileBytesPerSeries measures
// about 6,420 bytes full and 1,350 new) instead of ≈121.2 KiB. A
// 10,000-node cluster's 40,000 node series then take at most 258 MB
// (≈246 MiB) however long the agent runs, against about 4.6 GiB with the
// default tiers after 90 days.
//
// Profiles are part of the replicated contract like the tiers: every node
// needs the same ones (in any order), and they are off unless a Config
// names them (Profiles: DefaultProfiles()). A node refuses a snapshot taken
// with other profiles, so turning them on in a running cluster means
// starting its state afresh.
//
// # Snapshots
//
// A snapshot is a versioned stream of named sections with a CRC-32C trailer;
// snapshot.go documents it byte by byte. A sub-store added later is a new
// section: old snapshots lack it and restore it empty, and a reader that meets
// a section it does not know, unless the section is marked skippable,
// refuses the (intact) snapshot with ErrUnknownSection and stops as for an
// unknown command.
// The layout — tiers and profiles — is recorded and must match the node's
// configuration (ErrLayoutMismatch otherwise); a configuration without
// profiles writes it exactly as snapshots did before profiles existed, so
// those restore unchanged. RewriteQueuePause copies a snapshot with the
// migration queue's pause set and nothing else changed, which a restore
// hands raft so that every server restores the queue paused
// (snapshotpause.go).
//
// # Act state
//
// Migration requests, reservations, intents and the rest are small and few,
// so their commands carry one JSON document (actcmd.go) and the FSM copies
// them whole for a snapshot. The rules that keep the act half safe live in
// Apply, where every node enforces them alike: the state machine assigns
// request and reservation IDs; a request for a resource (or allocation)
// that an unfinished request already moves is refused with a
// *ConflictError naming it, and one beyond the queue limit with
// ErrQueueFull; updates are compare-and-set on Version (the log index of the
// last change) and follow the request lifecycle; an intent ID can be opened
// once only, so a retried Apply cannot announce a side effect twice; the
// decision log and closed intents are bounded rings. FSM.Act returns every
// act structure at one applied index, and FSM.Read gives a view of series
// and act state under one lock, for the planner's consistent read. Local
// applies commands to an FSM without Raft, for single-process runs.
//
// # Concurrency
//
// Raft's FSM goroutine is the only writer. Snapshot copies series pointers
// under the lock and bumps a generation; after a capture, the first change to
// a series copies its header (about 1.2 KB) and each 1 KiB page it then writes
// (copy-on-write), so Persist streams the capture without locks while Apply
// continues, and a snapshot costs one extra page per tier for each series that
// changes while it is being persisted — not a copy of the state. Readers take
// a read lock and receive copies.
package state
