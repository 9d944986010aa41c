package state

import (
	"encoding/json"
	"fmt"
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
	fr := snapshotReader(r)
	var s Summary
	if _, err := fr.readPreamble(); err != nil {
		return s, err
	}
	s.Format = snapshotVersion
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
		name, _, records, err := fr.sectionHeader()
		if err != nil {
			return s, err
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
	if err := fr.readTrailer(); err != nil {
		return s, err
	}
	return s, nil
}
