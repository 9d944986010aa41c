package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The act state's snapshot sections, written after "series" and only when
// they hold something (so a state without act data snapshots exactly as
// before these sections existed). Every record is one JSON document.
//
//	act           one record: cluster ID, pause, ID counters, cooldowns, estimates
//	queue         one record per migration request, in submission order
//	reservations  one record per reservation, in creation order
//	intents       one record per intent: closed ones oldest first, then open ones by ID
//	scale         one record per scale action, oldest first
//	decisions     one record per decision, oldest first; skippable, since
//	              nothing later depends on the log of decisions
const (
	sectionAct          = "act"
	sectionQueue        = "queue"
	sectionReservations = "reservations"
	sectionIntents      = "intents"
	sectionScale        = "scale"
	sectionDecisions    = "decisions"
)

type actMeta struct {
	Modified        uint64               `json:"modified,omitempty"`
	ClusterID       string               `json:"cluster_id,omitempty"`
	Paused          bool                 `json:"paused,omitempty"`
	PausedAt        time.Time            `json:"paused_at,omitzero"`
	PausedBy        string               `json:"paused_by,omitempty"`
	NextRequest     uint64               `json:"next_request"`
	NextReservation uint64               `json:"next_reservation"`
	NextScale       uint64               `json:"next_scale"`
	Cooldowns       map[string]time.Time `json:"cooldowns,omitempty"`
	Estimates       map[string]Estimate  `json:"estimates,omitempty"`
}

// meta returns the "act" section's record. Its Cooldowns and Estimates are
// s's own maps, not copies: persist calls it on the capture's copy of the
// act store (actStore.clone), which Apply never touches, so Persist may
// encode them while Apply goes on (TestActSnapshotIsPointInTime).
func (s *actStore) meta() actMeta {
	return actMeta{
		Modified: s.modified, ClusterID: s.clusterID, Paused: s.paused, PausedAt: s.pausedAt, PausedBy: s.pausedBy,
		NextRequest: s.nextRequest, NextReservation: s.nextReservation, NextScale: s.nextScale,
		Cooldowns: s.cooldowns, Estimates: s.estimates,
	}
}

func (s *actStore) empty() bool {
	return s.meta().isZero() && len(s.requests) == 0 && len(s.reservations) == 0 &&
		len(s.intents) == 0 && len(s.scales) == 0 && len(s.decisions) == 0
}

func (m actMeta) isZero() bool {
	return m.Modified == 0 && m.ClusterID == "" && !m.Paused && m.PausedAt.IsZero() && m.PausedBy == "" && m.NextRequest == 0 &&
		m.NextReservation == 0 && m.NextScale == 0 && len(m.Cooldowns) == 0 && len(m.Estimates) == 0
}

// actSection is one section ready to write.
type actSection struct {
	name    string
	flags   byte
	records []any
}

// sections lists the act state's non-empty sections in their fixed order.
func (s *actStore) sections() []actSection {
	if s.empty() {
		return nil
	}
	out := []actSection{{name: sectionAct, records: []any{s.meta()}}}
	add := func(name string, flags byte, recs []any) {
		if len(recs) > 0 {
			out = append(out, actSection{name: name, flags: flags, records: recs})
		}
	}
	var recs []any
	for _, id := range slices.SortedFunc(maps.Keys(s.requests), bySeq) {
		recs = append(recs, s.requests[id])
	}
	add(sectionQueue, 0, recs)
	recs = nil
	for _, id := range slices.SortedFunc(maps.Keys(s.reservations), bySeq) {
		recs = append(recs, s.reservations[id])
	}
	add(sectionReservations, 0, recs)
	recs = nil
	for _, id := range s.closed {
		recs = append(recs, s.intents[id])
	}
	for _, id := range slices.Sorted(maps.Keys(s.intents)) {
		if s.intents[id].Open() {
			recs = append(recs, s.intents[id])
		}
	}
	add(sectionIntents, 0, recs)
	recs = nil
	for i := range s.scales {
		recs = append(recs, s.scales[i])
	}
	add(sectionScale, 0, recs)
	recs = nil
	for i := range s.decisions {
		recs = append(recs, s.decisions[i])
	}
	add(sectionDecisions, flagSkippable, recs)
	return out
}

// writeAct writes the act sections after the series section.
func writeAct(fw *frameWriter, secs []actSection) {
	for _, sec := range secs {
		fw.frame(func(e *encoder) {
			e.str(sec.name)
			e.u8(sec.flags)
			e.uvarint(uint64(len(sec.records)))
		})
		for _, r := range sec.records {
			fw.frame(func(e *encoder) { encodeJSON(e, r) })
		}
	}
}

// isActSection reports whether name is one of the act sections.
func isActSection(name string) bool {
	switch name {
	case sectionAct, sectionQueue, sectionReservations, sectionIntents, sectionScale, sectionDecisions:
		return true
	}
	return false
}

// restoreAct reads one act section into s.
func restoreAct(fr *frameReader, s *actStore, name string, records uint64) error {
	for i := range records {
		d, err := fr.frame()
		if err != nil {
			return err
		}
		if err := s.restoreRecord(d, name); err != nil {
			return fmt.Errorf("%w: %s record %d: %w", ErrCorruptSnapshot, name, i, err)
		}
		if err := d.done(); err != nil {
			return fmt.Errorf("%w: %s record %d: %w", ErrCorruptSnapshot, name, i, err)
		}
	}
	return nil
}

func (s *actStore) restoreRecord(d *decoder, name string) error {
	raw := d.str()
	if d.err != nil {
		return d.err
	}
	switch name {
	case sectionAct:
		var m actMeta
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return err
		}
		s.modified, s.clusterID, s.paused, s.pausedAt, s.pausedBy = m.Modified, m.ClusterID, m.Paused, m.PausedAt, m.PausedBy
		s.nextRequest, s.nextReservation, s.nextScale = m.NextRequest, m.NextReservation, m.NextScale
		if m.Cooldowns != nil {
			s.cooldowns = m.Cooldowns
		}
		if m.Estimates != nil {
			s.estimates = m.Estimates
		}
	case sectionQueue:
		var r MigrationRequest
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return err
		}
		if r.ID == "" || s.requests[r.ID] != nil {
			return fmt.Errorf("request %q missing or twice", r.ID)
		}
		if err := checkRequest(&r); err != nil {
			return err
		}
		s.requests[r.ID] = &r
		s.index(&r, true)
		if r.OriginKey != "" {
			s.byOrigin[r.OriginKey] = r.ID
		}
	case sectionReservations:
		var r Reservation
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return err
		}
		if r.ID == "" || s.reservations[r.ID] != nil {
			return fmt.Errorf("reservation %q missing or twice", r.ID)
		}
		s.reservations[r.ID] = &r
	case sectionIntents:
		var in Intent
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			return err
		}
		if in.ID == "" || s.intents[in.ID] != nil {
			return fmt.Errorf("intent %q missing or twice", in.ID)
		}
		s.intents[in.ID] = &in
		if in.Open() {
			s.open[in.ID] = &in
		} else {
			s.closed = append(s.closed, in.ID)
		}
	case sectionScale:
		var a ScaleAction
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return err
		}
		s.scales = append(s.scales, a)
	case sectionDecisions:
		var dec Decision
		if err := json.Unmarshal([]byte(raw), &dec); err != nil {
			return err
		}
		s.decisions = append(s.decisions, dec)
	}
	return nil
}
