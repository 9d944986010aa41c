package state

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
)

// RewriteQueuePause copies the snapshot r holds to w with the migration
// queue's pause set as pause says (paused, paused_at, paused_by, as
// applying pause would set them), and returns the pause the snapshot held.
// A snapshot restore pauses the queue this way, so that every server
// restores a queue already paused, in the same step as the rest of the
// state, whatever leadership does after (agent's RestoreSnapshot).
//
// The pause replaces whatever the snapshot held, a pause by someone else
// included: paused_by then names who paused it last, and the returned
// pause is the one it replaced, for the caller to say.
//
// Everything else is kept: every frame but the "act" section's record is
// copied byte for byte, and that record, a JSON document, keeps every key
// but the pause's, those a later release may add included (the keys come
// out sorted, which changes no meaning). The header's applied index stays
// the snapshot's, and so does the act state's modified index: no entry was
// applied. A snapshot without an "act" section (a state that never held
// act data) gets one after its "series" section, holding the pause alone,
// and its header counts it. The CRC-32C trailer is computed anew.
//
// r is read twice: first whole, to check it as Summarize does (its
// framing, its format version and its trailer) and its "act" records as
// a restore reads them, and to learn whether it has an "act" section;
// then again to copy it. A snapshot that fails the check is refused
// before anything is written to w, with an error that wraps
// ErrCorruptSnapshot (or ErrUnknownSection for a later format version).
// It reads no clock: the pause's time is the caller's.
func RewriteQueuePause(w io.Writer, r io.ReadSeeker, pause SetQueuePaused) (SetQueuePaused, error) {
	was, err := rewriteAct(w, r, actEdit{pause: &pause})
	if err != nil {
		return SetQueuePaused{}, fmt.Errorf("state: rewrite the queue's pause: %w", err)
	}
	return was, nil
}

// RewriteActModified copies the snapshot r holds to w with the act
// state's modified index set to index, when that is past the snapshot's
// own (it is never taken back), as RewriteQueuePause copies it: every
// other key and frame kept, a snapshot without an "act" section given
// one that holds the index alone, r checked whole before anything is
// written, the trailer computed anew.
//
// A snapshot restore sets it to the Raft index the restore takes
// (cluster.Node.RestoreBackupAt), past every index of the state it
// replaces: an index a client read before the restore is then behind the
// restored state's, as after any other change, and never equal to it,
// which told a blocking query nothing had changed. The index travels in
// the state raft hands every server, so each, a follower installing it
// later or a server restarting from it, holds the same one.
func RewriteActModified(w io.Writer, r io.ReadSeeker, index uint64) error {
	if _, err := rewriteAct(w, r, actEdit{modified: index}); err != nil {
		return fmt.Errorf("state: rewrite the act state's index: %w", err)
	}
	return nil
}

// actEdit is what rewriteAct changes of the "act" section's record: the
// pause, unless nil, and the modified index, when past the record's.
type actEdit struct {
	pause    *SetQueuePaused
	modified uint64
}

// rewriteAct checks r whole (scanSections), then copies it to w with its
// "act" record edited (rewriteRecords); it returns the pause r held.
func rewriteAct(w io.Writer, r io.ReadSeeker, edit actEdit) (SetQueuePaused, error) {
	hasAct, err := scanSections(r)
	if err != nil {
		return SetQueuePaused{}, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return SetQueuePaused{}, err
	}
	return rewriteRecords(w, r, edit, hasAct)
}

// scanSections reads a whole snapshot, checking its framing, its "act"
// records and its trailer, and reports whether it has an "act" section.
func scanSections(r io.Reader) (hasAct bool, err error) {
	fr := snapshotReader(r)
	if _, err := fr.readPreamble(); err != nil {
		return false, err
	}
	d, err := fr.frame()
	if err != nil {
		return false, err
	}
	d.uvarint()
	sections := d.uvarint()
	if err := d.done(); err != nil {
		return false, fmt.Errorf("%w: header: %w", ErrCorruptSnapshot, err)
	}
	for range sections {
		name, _, records, err := fr.sectionHeader()
		if err != nil {
			return false, err
		}
		hasAct = hasAct || name == sectionAct
		for i := range records {
			d, err := fr.frame()
			if err != nil {
				return false, err
			}
			if name != sectionAct {
				continue
			}
			rec := d.str()
			if err := d.done(); err != nil {
				return false, fmt.Errorf("%w: act record %d: %w", ErrCorruptSnapshot, i, err)
			}
			if _, _, err := editActRecord([]byte(rec), actEdit{}); err != nil {
				return false, fmt.Errorf("%w: act record %d: %w", ErrCorruptSnapshot, i, err)
			}
		}
	}
	return hasAct, fr.readTrailer()
}

// rewriteRecords copies the snapshot from r to w with its "act" record
// edited as edit says; hasAct says whether r has an "act" section
// (scanSections).
func rewriteRecords(w io.Writer, r io.Reader, edit actEdit, hasAct bool) (was SetQueuePaused, err error) {
	fr := snapshotReader(r)
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	fw := &frameWriter{w: bw}
	// copyFrame writes a frame as it was read.
	copyFrame := func(b []byte) { fw.frame(func(e *encoder) { e.buf = append(e.buf, b...) }) }

	version, err := fr.readPreamble()
	if err != nil {
		return was, err
	}
	bw.WriteString(snapshotMagic)
	bw.Write(version)
	d, err := fr.frame()
	if err != nil {
		return was, err
	}
	applied, sections := d.uvarint(), d.uvarint()
	if err := d.done(); err != nil {
		return was, fmt.Errorf("%w: header: %w", ErrCorruptSnapshot, err)
	}
	if hasAct {
		copyFrame(d.buf)
	} else {
		fw.frame(func(e *encoder) {
			e.uvarint(applied)
			e.uvarint(sections + 1)
		})
	}
	// insert writes an "act" section that holds the edit alone.
	insert := func() error {
		rec, _, err := editActRecord(nil, edit)
		if err != nil {
			return err
		}
		fw.frame(func(e *encoder) {
			e.str(sectionAct)
			e.u8(0)
			e.uvarint(1)
		})
		fw.frame(func(e *encoder) { e.str(string(rec)) })
		hasAct = true
		return nil
	}
	for range sections {
		name, raw, records, err := fr.sectionHeader()
		if err != nil {
			return was, err
		}
		copyFrame(raw)
		for i := range records {
			d, err := fr.frame()
			if err != nil {
				return was, err
			}
			if name != sectionAct {
				copyFrame(d.buf)
				continue
			}
			rec := d.str()
			if err := d.done(); err != nil {
				return was, fmt.Errorf("%w: act record %d: %w", ErrCorruptSnapshot, i, err)
			}
			out, held, err := editActRecord([]byte(rec), edit)
			if err != nil {
				return was, fmt.Errorf("%w: act record %d: %w", ErrCorruptSnapshot, i, err)
			}
			was = held // restore reads the records in turn: the last one's pause stands
			fw.frame(func(e *encoder) { e.str(string(out)) })
		}
		if !hasAct && name == sectionSeries {
			if err := insert(); err != nil {
				return was, err
			}
		}
	}
	if !hasAct {
		// No "series" section: the act section goes last.
		if err := insert(); err != nil {
			return was, err
		}
	}
	if err := fr.readTrailer(); err != nil {
		return was, err
	}
	if fw.err != nil {
		return was, fw.err
	}
	if err := bw.Flush(); err != nil {
		return was, err
	}
	_, err = w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return was, err
}

// editActRecord returns the "act" section's record rec (nil for none)
// edited as edit says, and the pause rec held. A pause sets its keys as
// applying it sets the act state's (and as actMeta writes them, empty
// ones left out); a modified index past the record's replaces it; every
// other key is kept. A record that the act state would not restore is
// refused.
func editActRecord(rec []byte, edit actEdit) ([]byte, SetQueuePaused, error) {
	var was SetQueuePaused
	var m actMeta
	keys := map[string]json.RawMessage{}
	if rec != nil {
		if err := json.Unmarshal(rec, &m); err != nil {
			return nil, was, err
		}
		was = SetQueuePaused{Paused: m.Paused, At: m.PausedAt, By: m.PausedBy}
		if err := json.Unmarshal(rec, &keys); err != nil {
			return nil, was, err
		}
		if keys == nil { // the record is JSON's null
			keys = map[string]json.RawMessage{}
		}
	} else {
		// As actMeta writes a state that holds nothing but the edit.
		keys["next_request"], keys["next_reservation"], keys["next_scale"] = json.RawMessage("0"), json.RawMessage("0"), json.RawMessage("0")
	}
	set := func(key string, v any, empty bool) error {
		if empty {
			delete(keys, key)
			return nil
		}
		b, err := json.Marshal(v)
		keys[key] = b
		return err
	}
	if edit.modified > m.Modified {
		if err := set("modified", edit.modified, false); err != nil {
			return nil, was, err
		}
	}
	if pause := edit.pause; pause != nil {
		by := bound(pause.By)
		if err := set("paused", pause.Paused, !pause.Paused); err != nil {
			return nil, was, err
		}
		if err := set("paused_at", pause.At, pause.At.IsZero()); err != nil {
			return nil, was, err
		}
		if err := set("paused_by", by, by == ""); err != nil {
			return nil, was, err
		}
	}
	out, err := json.Marshal(keys)
	return out, was, err
}
