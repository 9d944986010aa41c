package state

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
)

// SnapshotFormat is the snapshot format version this build writes, and
// the latest it reads (snapshot.go). A backup records it, so that a
// release that cannot read a backup's state says so before restoring it.
const SnapshotFormat = snapshotVersion

// Summary is what a snapshot holds, read without a Config: the index it
// was taken at, its layout, and how many records each section holds.
// Backups print it (foreshape operator snapshot inspect).
type Summary struct {
	// Format is the snapshot format version.
	Format int `json:"format"`
	// Applied is the index of the last entry the state had applied.
	Applied uint64 `json:"applied_index"`
	// Tiers and Profiles are the layout the series were kept with: a
	// restore needs the same in the servers' configuration.
	Tiers    []Tier    `json:"tiers"`
	Profiles []Profile `json:"profiles,omitempty"`
	// Series, Requests, Reservations, Intents, ScaleActions, Decisions,
	// Servers and Clients count the series, migration requests (of every
	// status), reservations, intents (open and closed), scale actions,
	// decisions, servers and client agents the state holds.
	Series       int `json:"series"`
	Requests     int `json:"migration_requests"`
	Reservations int `json:"reservations"`
	Intents      int `json:"intents"`
	ScaleActions int `json:"scale_actions"`
	Decisions    int `json:"decisions"`
	Servers      int `json:"servers"`
	Clients      int `json:"client_agents"`
	// Unknown names the sections this build does not know, which a newer
	// release wrote.
	Unknown []string `json:"unknown_sections,omitempty"`
}

// Summarize reads a whole snapshot and says what it holds. It checks the
// framing and the CRC-32C trailer, so an answer without error is of an
// intact snapshot; it does not build the state, and needs no Config (a
// snapshot whose layout differs from a server's configuration is
// summarized, and Restore refuses it). A snapshot of a later format
// version fails with ErrUnknownSection.
func Summarize(r io.Reader) (Summary, error) {
	fr := &frameReader{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	var s Summary
	magic := make([]byte, len(snapshotMagic))
	if err := fr.full(magic); err != nil || string(magic) != snapshotMagic {
		return s, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	v, err := binary.ReadUvarint(fr)
	if err == nil && v > snapshotVersion {
		return s, fmt.Errorf("%w: format version %d, this build reads %d", ErrUnknownSection, v, snapshotVersion)
	}
	if err != nil || v != snapshotVersion {
		return s, fmt.Errorf("%w: version %d, want %d (%v)", ErrCorruptSnapshot, v, snapshotVersion, err)
	}
	s.Format = int(v)
	d, err := fr.frame()
	if err != nil {
		return s, err
	}
	s.Applied = d.uvarint()
	sections := d.uvarint()
	if err := d.done(); err != nil {
		return s, fmt.Errorf("%w: header: %w", ErrCorruptSnapshot, err)
	}
	for range sections {
		d, err := fr.frame()
		if err != nil {
			return s, err
		}
		name, _, records := d.str(), d.u8(), d.uvarint()
		if err := d.done(); err != nil {
			return s, fmt.Errorf("%w: section header: %w", ErrCorruptSnapshot, err)
		}
		for i := range records {
			d, err := fr.frame()
			if err != nil {
				return s, err
			}
			switch {
			case name == sectionSeries && i == 0:
				layout := decodeLayout(d)
				if err := d.done(); err != nil {
					return s, fmt.Errorf("%w: layout: %w", ErrCorruptSnapshot, err)
				}
				s.Tiers, s.Profiles = layout.Tiers, layout.Profiles
			case name == sectionSeries:
				s.Series++
			case name == sectionQueue:
				s.Requests++
			case name == sectionReservations:
				s.Reservations++
			case name == sectionIntents:
				s.Intents++
			case name == sectionScale:
				s.ScaleActions++
			case name == sectionDecisions:
				s.Decisions++
			case name == sectionMembership:
				var rec struct {
					Server json.RawMessage `json:"server"`
				}
				if json.Unmarshal([]byte(d.str()), &rec) == nil && len(rec.Server) > 0 && string(rec.Server) != "null" {
					s.Servers++
				} else {
					s.Clients++
				}
			}
		}
		switch name {
		case sectionSeries, sectionAct, sectionQueue, sectionReservations, sectionIntents, sectionScale, sectionDecisions, sectionMembership:
		default:
			s.Unknown = append(s.Unknown, name)
		}
	}
	want := fr.crc.Sum32()
	var trailer [4]byte
	if _, err := io.ReadFull(fr.r, trailer[:]); err != nil {
		return s, fmt.Errorf("%w: trailer: %w", ErrCorruptSnapshot, err)
	}
	if got := binary.BigEndian.Uint32(trailer[:]); got != want {
		return s, fmt.Errorf("%w: checksum %08x, computed %08x", ErrCorruptSnapshot, got, want)
	}
	if _, err := fr.r.ReadByte(); err != io.EOF {
		return s, fmt.Errorf("%w: data after the trailer", ErrCorruptSnapshot)
	}
	return s, nil
}
