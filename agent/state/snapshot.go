package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"time"
)

// The snapshot format (version 1). Every integer is a varint as in encoder.
//
//	magic      8 bytes "fshstate"
//	version    uvarint, 1
//	header     frame: applied index (uvarint), number of sections (uvarint)
//	sections   per section:
//	             frame: name (string), flags (byte), number of records (uvarint)
//	             that many record frames
//	trailer    4 bytes: CRC-32C (Castagnoli) of every byte before it, big-endian
//
// A frame is a uvarint length followed by that many bytes. Sections appear in
// a fixed order. Flag bit 0 marks a section an older reader may skip; a
// reader refuses an intact snapshot with an unknown section without it
// (ErrUnknownSection), since ignoring state that later commands depend on
// would let nodes diverge, and the FSM then stops (FSM.Halted).
//
// Section "series": the first record is the layout, the Config's tiers and
// profiles:
//
//	tiers        number of tiers, then per tier its step in nanoseconds and
//	             its points
//	profiles     only when the Config has profiles: their number, then per
//	             profile in prefix order its prefix (string) and its tiers
//	             as above
//
// A configuration without profiles writes the record exactly as snapshots
// did before profiles existed, so such snapshots restore on nodes built with
// or without profile support. Restore refuses a snapshot whose layout
// differs from the node's Config (ErrLayoutMismatch): each series' rings are
// shaped by it. Then one record per series in key order:
//
//	key          locality, metric (strings)
//	flags        byte: bit 0 has a sample, bit 1 stale
//	last sample  varint unix ns, when bit 0
//	step         varint ns
//	stale        varint since (unix ns) and reason (string), when bit 1
//	per tier     of the key's profile (or the default tiers): used (byte);
//	             when used: head bucket (varint), number of non-empty
//	             buckets (uvarint), then per bucket from the newest back:
//	             distance from head (uvarint), mean, min, max (float32),
//	             count (uvarint)
//
// The act state's sections follow "series"; actsnapshot.go documents them.
// The skippable "membership" section (servers and client agents) comes
// last; membership.go documents it.
//
// To add a sub-store: give it a section name, write it after "series" in
// persist, read it in restore, and bump nothing — old snapshots simply lack
// the section and restore it empty.
const (
	snapshotMagic   = "fshstate"
	snapshotVersion = 1

	sectionSeries = "series"

	flagSkippable = 1 << 0

	maxFrame = 256 << 20
)

// ErrCorruptSnapshot is returned by Restore for a snapshot it cannot read;
// the FSM keeps its previous state.
var ErrCorruptSnapshot = errors.New("state: corrupt snapshot")

// ErrLayoutMismatch is returned by Restore for an intact snapshot taken with
// other tiers or profiles than the node's Config; the FSM keeps its previous
// state. Every node of a cluster must share one Config.
var ErrLayoutMismatch = errors.New("state: snapshot layout differs from the configuration")

// capture is an immutable view of the state taken by FSM.Snapshot.
type capture struct {
	applied uint64
	cfg     Config    // the store's, with defaults; never changed
	series  []*series // shared with the store until the store copies them
	act     *actStore // a deep copy
	members *membership
}

// persist writes the capture in the snapshot format.
func (c *capture) persist(w io.Writer) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	fw := &frameWriter{w: bw}

	bw.WriteString(snapshotMagic)
	fw.uvarint(snapshotVersion)
	var act []actSection
	if c.act != nil {
		act = c.act.sections()
	}
	nsec := 1 + len(act)
	if c.members != nil && len(c.members.records()) > 0 {
		nsec++
	}
	fw.frame(func(e *encoder) {
		e.uvarint(c.applied)
		e.uvarint(uint64(nsec))
	})

	slices.SortFunc(c.series, func(a, b *series) int { return compareKeys(a.key, b.key) })
	fw.frame(func(e *encoder) {
		e.str(sectionSeries)
		e.u8(0)
		e.uvarint(uint64(1 + len(c.series)))
	})
	fw.frame(func(e *encoder) { encodeLayout(e, c.cfg) })
	for _, sr := range c.series {
		fw.frame(func(e *encoder) { encodeSeries(e, sr) })
	}
	writeAct(fw, act)
	writeMembership(fw, c.members)
	if fw.err != nil {
		return fw.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// encodeLayout writes the series section's layout record.
func encodeLayout(e *encoder, cfg Config) {
	encodeTiers(e, cfg.Tiers)
	if len(cfg.Profiles) == 0 {
		return
	}
	e.uvarint(uint64(len(cfg.Profiles)))
	for _, p := range cfg.Profiles {
		e.str(p.Prefix)
		encodeTiers(e, p.Tiers)
	}
}

func encodeTiers(e *encoder, tiers []Tier) {
	e.uvarint(uint64(len(tiers)))
	for _, t := range tiers {
		e.uvarint(uint64(t.Step))
		e.uvarint(uint64(t.Points))
	}
}

// decodeLayout reads what encodeLayout wrote; a record that ends after the
// tiers has no profiles.
func decodeLayout(d *decoder) Config {
	var c Config
	c.Tiers = decodeTiers(d)
	if d.err != nil || d.remaining() == 0 {
		return c
	}
	c.Profiles = make([]Profile, d.count(5))
	for i := range c.Profiles {
		c.Profiles[i] = Profile{Prefix: d.str(), Tiers: decodeTiers(d)}
	}
	return c
}

func decodeTiers(d *decoder) []Tier {
	tiers := make([]Tier, d.count(2))
	for i := range tiers {
		tiers[i] = Tier{Step: time.Duration(d.uvarint()), Points: int(d.uvarint())}
	}
	return tiers
}

// sameLayout reports whether two configurations (with defaults, profiles
// sorted) shape series alike.
func sameLayout(a, b Config) bool {
	return slices.Equal(a.Tiers, b.Tiers) && slices.EqualFunc(a.Profiles, b.Profiles, func(p, q Profile) bool {
		return p.Prefix == q.Prefix && slices.Equal(p.Tiers, q.Tiers)
	})
}

func encodeSeries(e *encoder, sr *series) {
	l := sr.layout
	e.key(sr.key)
	var flags byte
	if sr.hasSample {
		flags |= 1
	}
	if sr.stale {
		flags |= 2
	}
	e.u8(flags)
	if sr.hasSample {
		e.varint(sr.lastSample)
	}
	e.varint(sr.step)
	if sr.stale {
		e.varint(sr.staleSince)
		e.str(sr.staleReason)
	}
	for i := range l.tiers {
		h := sr.heads[i]
		if !h.used {
			e.u8(0)
			continue
		}
		e.u8(1)
		e.varint(h.head)
		ring := sr.appendRing(e.scratch[:0], i)
		e.scratch = ring
		n := len(ring)
		start := l.pos(i, h.head) - l.offsets[i] // the newest bucket's index in the ring
		filled := 0
		for _, b := range ring {
			if b.count != 0 {
				filled++
			}
		}
		e.uvarint(uint64(filled))
		for back := 0; back < n; back++ {
			j := start - back
			if j < 0 {
				j += n
			}
			b := ring[j]
			if b.count == 0 {
				continue
			}
			e.uvarint(uint64(back))
			e.f32(b.mean)
			e.f32(b.min)
			e.f32(b.max)
			e.uvarint(uint64(b.count))
		}
	}
}

// frameWriter writes frames, keeping the first error.
type frameWriter struct {
	w   *bufio.Writer
	e   encoder
	err error
}

func (f *frameWriter) uvarint(v uint64) {
	if f.err == nil {
		_, f.err = f.w.Write(binary.AppendUvarint(nil, v))
	}
}

func (f *frameWriter) frame(fill func(e *encoder)) {
	if f.err != nil {
		return
	}
	f.e.buf = f.e.buf[:0]
	fill(&f.e)
	var hdr [binary.MaxVarintLen64]byte
	if _, f.err = f.w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(f.e.buf)))]); f.err == nil {
		_, f.err = f.w.Write(f.e.buf)
	}
}

// restored is what restore read: a new store and the applied index.
type restored struct {
	// unknown names what a newer build wrote that this one cannot read
	// (ErrUnknownSection).
	unknown string
	applied uint64
	store   *Store
	act     *actStore
	members *membership
}

// restore reads a snapshot into a new store configured like cfg.
func restore(r io.Reader, cfg Config, o *older) (restored, error) {
	fr := snapshotReader(r)
	var out restored
	st, err := NewStore(cfg)
	if err != nil {
		return out, err
	}
	out.store = st
	out.act = newActStore()
	out.members = newMembership()

	magic := make([]byte, len(snapshotMagic))
	if err := fr.full(magic); err != nil || string(magic) != snapshotMagic {
		return out, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	v, err := binary.ReadUvarint(fr)
	if err == nil && v > snapshotVersion {
		out.unknown = fmt.Sprintf("format version %d", v)
		return out, fmt.Errorf("%w: format version %d, this build reads %d", ErrUnknownSection, v, snapshotVersion)
	}
	if err != nil || v != snapshotVersion {
		return out, fmt.Errorf("%w: version %d, want %d (%v)", ErrCorruptSnapshot, v, snapshotVersion, err)
	}
	d, err := fr.frame()
	if err != nil {
		return out, err
	}
	out.applied = d.uvarint()
	sections := d.uvarint()
	if err := d.done(); err != nil {
		return out, fmt.Errorf("%w: header: %w", ErrCorruptSnapshot, err)
	}
	seen := map[string]bool{}
	for range sections {
		d, err := fr.frame()
		if err != nil {
			return out, err
		}
		name, flags, records := d.str(), d.u8(), d.uvarint()
		if err := d.done(); err != nil {
			return out, fmt.Errorf("%w: section header: %w", ErrCorruptSnapshot, err)
		}
		if seen[name] {
			return out, fmt.Errorf("%w: section %q twice", ErrCorruptSnapshot, name)
		}
		seen[name] = true
		known := o.knowsSection(name)
		switch {
		case known && name == sectionSeries:
			err = restoreSeries(fr, st, records)
		case known && isActSection(name):
			err = restoreAct(fr, out.act, name, records)
		case known && name == sectionMembership:
			err = restoreMembership(fr, out.members, records)
		default:
			if flags&flagSkippable == 0 && out.unknown == "" {
				// Said once the whole snapshot proves intact.
				out.unknown = fmt.Sprintf("section %q", name)
			}
			for range records {
				if _, err = fr.frame(); err != nil {
					break
				}
			}
		}
		if err != nil {
			return out, err
		}
	}
	if err := fr.readTrailer(); err != nil {
		return out, err
	}
	if out.unknown != "" {
		// Intact, with a section this build does not know and may not
		// skip: a newer server wrote it, and the state it holds is part
		// of the cluster's.
		return out, fmt.Errorf("%w: %s (a newer server wrote it)", ErrUnknownSection, out.unknown)
	}
	return out, nil
}

func restoreSeries(fr *frameReader, st *Store, records uint64) error {
	if records == 0 {
		return fmt.Errorf("%w: series section without layout", ErrCorruptSnapshot)
	}
	d, err := fr.frame()
	if err != nil {
		return err
	}
	snap := decodeLayout(d)
	if err := d.done(); err != nil {
		return fmt.Errorf("%w: layout: %w", ErrCorruptSnapshot, err)
	}
	switch {
	case !slices.Equal(snap.Tiers, st.cfg.Tiers):
		return fmt.Errorf("%w: snapshot tiers %v, configured %v", ErrLayoutMismatch, snap.Tiers, st.cfg.Tiers)
	case !sameLayout(snap, st.cfg):
		return fmt.Errorf("%w: snapshot profiles %v, configured %v", ErrLayoutMismatch, snap.Profiles, st.cfg.Profiles)
	}
	var prev *Key
	for i := uint64(1); i < records; i++ {
		d, err := fr.frame()
		if err != nil {
			return err
		}
		sr := decodeSeries(d, st)
		if err := d.done(); err != nil {
			return fmt.Errorf("%w: series record %d: %w", ErrCorruptSnapshot, i, err)
		}
		if err := sr.key.Validate(); err != nil {
			return fmt.Errorf("%w: series record %d: %w", ErrCorruptSnapshot, i, err)
		}
		if prev != nil && compareKeys(*prev, sr.key) >= 0 {
			return fmt.Errorf("%w: series %s out of order", ErrCorruptSnapshot, sr.key)
		}
		prev = &sr.key
		st.series[sr.key] = sr
	}
	return nil
}

// decodeSeries reads one series record into a series shaped by the store's
// layout for its key.
func decodeSeries(d *decoder, st *Store) *series {
	k := d.key()
	l := st.layoutFor(k.Locality)
	sr := newSeries(k, l, st.gen)
	flags := d.u8()
	if flags&^3 != 0 {
		d.fail(fmt.Errorf("unknown flags %#x", flags))
	}
	if flags&1 != 0 {
		sr.hasSample, sr.lastSample = true, d.varint()
	}
	sr.step = d.varint()
	if flags&2 != 0 {
		sr.stale, sr.staleSince, sr.staleReason = true, d.varint(), d.str()
	}
	for i := range l.tiers {
		switch d.u8() {
		case 0:
			continue
		case 1:
		default:
			d.fail(errors.New("bad tier flag"))
			return sr
		}
		h := &sr.heads[i]
		h.used, h.head = true, d.varint()
		n := uint64(l.tiers[i].Points)
		filled := d.count(14)
		last := -1
		for range filled {
			back := d.uvarint()
			b := bucket{mean: d.f32(), min: d.f32(), max: d.f32()}
			c := d.uvarint()
			if d.err != nil {
				return sr
			}
			if back >= n || int(back) <= last || c == 0 || c > 1<<32-1 {
				d.fail(fmt.Errorf("tier %d: bad bucket %d (count %d)", i, back, c))
				return sr
			}
			last = int(back)
			b.count = uint32(c)
			*sr.ptr(l.pos(i, h.head-int64(back))) = b
		}
	}
	return sr
}

// snapshotReader reads a snapshot's frames, hashing every byte.
func snapshotReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
}

// readPreamble reads the magic and the format version, and returns the
// version's bytes as they were written.
func (fr *frameReader) readPreamble() ([]byte, error) {
	magic := make([]byte, len(snapshotMagic))
	if err := fr.full(magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	v, err := binary.ReadUvarint(fr)
	if err == nil && v > snapshotVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrUnknownSection, v, snapshotVersion)
	}
	if err != nil || v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, want %d (%v)", ErrCorruptSnapshot, v, snapshotVersion, err)
	}
	return binary.AppendUvarint(nil, v), nil
}

// readTrailer checks the CRC-32C trailer and that nothing follows it.
func (fr *frameReader) readTrailer() error {
	want := fr.crc.Sum32()
	var trailer [4]byte
	if _, err := io.ReadFull(fr.r, trailer[:]); err != nil {
		return fmt.Errorf("%w: trailer: %w", ErrCorruptSnapshot, err)
	}
	if got := binary.BigEndian.Uint32(trailer[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, computed %08x", ErrCorruptSnapshot, got, want)
	}
	if _, err := fr.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the trailer", ErrCorruptSnapshot)
	}
	return nil
}

// sectionHeader reads a section's header frame.
func (fr *frameReader) sectionHeader() (name string, raw []byte, records uint64, err error) {
	d, err := fr.frame()
	if err != nil {
		return "", nil, 0, err
	}
	raw = append([]byte(nil), d.buf...)
	name, _, records = d.str(), d.u8(), d.uvarint()
	if err := d.done(); err != nil {
		return "", nil, 0, fmt.Errorf("%w: section header: %w", ErrCorruptSnapshot, err)
	}
	return name, raw, records, nil
}

// frameReader reads frames, hashing every byte it reads.
type frameReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	buf []byte
}

func (f *frameReader) ReadByte() (byte, error) {
	b, err := f.r.ReadByte()
	if err == nil {
		f.crc.Write([]byte{b})
	}
	return b, err
}

func (f *frameReader) full(p []byte) error {
	if _, err := io.ReadFull(f.r, p); err != nil {
		return err
	}
	f.crc.Write(p)
	return nil
}

// frame reads one frame into a reused buffer and returns a decoder over it.
func (f *frameReader) frame() (*decoder, error) {
	n, err := binary.ReadUvarint(f)
	if err != nil {
		return nil, fmt.Errorf("%w: frame length: %w", ErrCorruptSnapshot, err)
	}
	if n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrCorruptSnapshot, n)
	}
	// Grow the buffer as bytes arrive rather than trusting the length, so a
	// corrupt length costs no more memory than the stream really holds.
	f.buf = f.buf[:0]
	for left := int(n); left > 0; {
		chunk := min(left, 1<<20)
		f.buf = slices.Grow(f.buf, chunk)
		p := f.buf[len(f.buf) : len(f.buf)+chunk]
		if err := f.full(p); err != nil {
			return nil, fmt.Errorf("%w: frame: %w", ErrCorruptSnapshot, err)
		}
		f.buf = f.buf[:len(f.buf)+chunk]
		left -= chunk
	}
	return &decoder{buf: f.buf}, nil
}
