package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/go-hclog"
)

var _ api.SnapshotBackend = (*Agent)(nil)

// restoreMu serialises restores: one backup replaces the state at a time.
var restoreMu sync.Mutex

// AtLeader implements api.SnapshotBackend: a server that does not lead
// passes the request to the leader, as it passes writes (forwardWrites),
// and relays its answer; one that was itself sent the request as the
// leader answers 503 (leadership moved).
func (a *Agent) AtLeader(w http.ResponseWriter, r *http.Request) bool {
	if a.node.IsLeader() {
		return false
	}
	if by := r.Header.Get(forwardedHeader); by != "" {
		notLeadingEither(w, by)
		return true
	}
	addr, err := a.leaderHTTP(r.Context())
	if err != nil {
		writeAPIError(w, http.StatusServiceUnavailable, "this server does not lead and cannot pass the snapshot request to the leader: "+err.Error())
		return true
	}
	a.forwardTo(addr, "").ServeHTTP(w, r)
	return true
}

// SaveSnapshot implements api.SnapshotBackend: a backup taken by raft on
// this server, the leader (cluster.Node.SaveBackup).
func (a *Agent) SaveSnapshot(ctx context.Context, w io.Writer) error {
	meta, err := a.node.SaveBackup(ctx, w, a.backupInfo())
	if errors.Is(err, cluster.ErrNotLeader) {
		return fmt.Errorf("%v: %w", err, api.ErrUnavailable)
	}
	if errors.Is(err, cluster.ErrDataDir) {
		// Raft cannot write the snapshot into the data_dir: worth trying
		// again once the disk has room, 503.
		return fmt.Errorf("%w: %w", err, api.ErrUnavailable)
	}
	if err != nil {
		return err
	}
	a.log.Info("snapshot saved for a backup", "index", meta.Index, "term", meta.Term, "state_bytes", meta.Size)
	return nil
}

func (a *Agent) backupInfo() cluster.BackupInfo {
	return cluster.BackupInfo{Release: a.opts.Version, StateFormat: state.SnapshotFormat, StateProtocol: state.Protocol}
}

// RestoreSnapshot implements api.SnapshotBackend. The backup is read
// whole into a file beside the Raft data (the system's temporary
// directory in dev mode) and checked before anything changes: the
// archive (cluster.ReadBackup), the state's format, and a restore of the
// state into a scratch state machine configured as this server's, which
// refuses a corrupted state, one of other tiers or profiles, and one a
// newer release wrote. Only a backup that passes is handed to raft,
// which would stop the process if the state machine refused it
// (cluster.Node.RestoreBackup). A refused backup is an error wrapping
// api.ErrInvalid, and the cluster's state is as it was.
//
// Unless o.KeepQueue, the state handed to raft is the backup's with the
// migration queue paused by the restore (state.RewriteQueuePause, into a
// second file beside the first; the scratch state machine checks that
// one), so that every server restores the queue already paused, in the
// same step as the rest of the state: no write after the restore is
// needed, and no leadership change after it can leave the queue running.
// The new term's coordinator then starts no move of a restored request,
// which may have been done or cancelled since the backup: an operator
// reviews them and resumes the queue. The restore's pause replaces one
// the backup held (paused_by names the restore, which the answer and the
// log say), as a pause by an operator replaces an earlier one. The
// answer describes the upload: its size and SHA-256 are of the file the
// operator sent, not of the state rewritten from it.
//
// Whatever o, the act state's index in the state handed to raft is the
// Raft index of the restore itself (state.RewriteActModified, into another
// file, once the leader's work has stopped: RestoreBackupAt), so
// that the queue's index never goes back at a restore and an index a
// client read before it is behind the restored queue's: a blocking query
// at it is answered at once. A backup taken with no change of the queue
// since left the index exactly where a client held it, and such a query
// waited its whole wait without showing the restore's pause.
func (a *Agent) RestoreSnapshot(ctx context.Context, body io.Reader, o api.RestoreOptions) (out api.SnapshotRestore, err error) {
	defer func() {
		if errors.Is(err, api.ErrInvalid) {
			a.log.Warn("snapshot restore refused; the state is as it was", logKeyError, err)
		}
	}()
	if !a.node.IsLeader() {
		return out, fmt.Errorf("this server no longer leads; nothing was restored: %w", api.ErrUnavailable)
	}
	restoreMu.Lock()
	defer restoreMu.Unlock()
	f, err := a.restoreFile()
	if err != nil {
		return out, err
	}
	defer removeRestoreFile(f)
	h := sha256.New()
	meta, err := cluster.ReadBackup(body, io.MultiWriter(f, h))
	if err != nil {
		if errors.Is(err, cluster.ErrNotBackup) || errors.Is(err, cluster.ErrBackupTruncated) ||
			errors.Is(err, cluster.ErrBackupCorrupt) || errors.Is(err, cluster.ErrBackupVersion) {
			return out, fmt.Errorf("the snapshot is refused, nothing was restored: %v: %w", err, api.ErrInvalid)
		}
		if errors.Is(err, cluster.ErrBackupUnread) || ctx.Err() != nil {
			return out, fmt.Errorf("the upload failed before the whole snapshot arrived, nothing was restored: %v: %w", err, api.ErrInvalid)
		}
		if derr := uploadDiskError(err); derr != nil {
			return out, derr
		}
		return out, fmt.Errorf("reading the snapshot, nothing was restored: %w", err)
	}
	if meta.StateFormat > state.SnapshotFormat {
		return out, fmt.Errorf("the snapshot is refused, nothing was restored: its state is of format %d (foreshape %s wrote it), this release reads up to format %d: restore it with that release or a later one: %w",
			meta.StateFormat, meta.Release, state.SnapshotFormat, api.ErrInvalid)
	}
	if err := rewind(f); err != nil {
		return out, err
	}
	summary, err := state.Summarize(f)
	if err != nil {
		return out, fmt.Errorf("the snapshot is refused, nothing was restored: its state cannot be read: %v: %w", err, api.ErrInvalid)
	}
	by := restorePausedBy(meta)
	// restored is the state handed to raft: the upload's, or, unless the
	// queue is kept, the upload's with the queue paused by the restore.
	restored, size := f, meta.Size
	var held state.SetQueuePaused // the backup's own pause, which the restore's replaces
	if !o.KeepQueue {
		at, err := a.clock.Now(ctx)
		if err != nil {
			at = time.Now() // the pause matters, not its data time
		}
		if restored, err = a.restoreFile(); err != nil {
			return out, err
		}
		defer removeRestoreFile(restored)
		if err := rewind(f); err != nil {
			return out, err
		}
		held, err = state.RewriteQueuePause(restored, f, state.SetQueuePaused{Paused: true, At: at.UTC(), By: by})
		switch {
		case errors.Is(err, state.ErrCorruptSnapshot) || errors.Is(err, state.ErrUnknownSection):
			return out, fmt.Errorf("the snapshot is refused, nothing was restored: its state cannot be read to pause its migration queue: %v: %w", err, api.ErrInvalid)
		case uploadDiskError(err) != nil:
			return out, uploadDiskError(err)
		case err != nil:
			return out, fmt.Errorf("writing the state with the migration queue paused to %s, nothing was restored: %w", restored.Name(), err)
		}
		if size, err = restored.Seek(0, io.SeekCurrent); err != nil {
			return out, err
		}
	}
	if err := rewind(restored); err != nil {
		return out, err
	}
	if err := a.checkRestores(restored); err != nil {
		return out, fmt.Errorf("the snapshot is refused, nothing was restored: %w: %w", err, api.ErrInvalid)
	}
	replaced, err := a.currentState()
	if err != nil {
		return out, err
	}
	var finals []*os.File
	defer func() {
		for _, f := range finals {
			removeRestoreFile(f)
		}
	}()
	handed := meta
	handed.Size = size
	// The state handed to raft carries the restore's own Raft index as the
	// act state's, which every server restores with it: past the index of
	// every queue the replaced state showed, so that a client holding one
	// sees a change, as after any other (state.RewriteActModified).
	var atErr error // the state's rewrite failed: said as is
	at := func(index uint64) (io.Reader, int64, error) {
		final, err := a.restoreFile()
		if err != nil {
			atErr = err
			return nil, 0, err
		}
		finals = append(finals, final)
		if atErr = rewind(restored); atErr != nil {
			return nil, 0, atErr
		}
		if err := state.RewriteActModified(final, restored, index); err != nil {
			if atErr = uploadDiskError(err); atErr == nil {
				atErr = fmt.Errorf("writing the state with the restore's index to %s, nothing was restored: %w", final.Name(), err)
			}
			return nil, 0, atErr
		}
		var n int64
		if n, atErr = final.Seek(0, io.SeekCurrent); atErr != nil {
			return nil, 0, atErr
		}
		if atErr = rewind(final); atErr != nil {
			return nil, 0, atErr
		}
		return final, n, nil
	}
	if err := a.node.RestoreBackupAt(ctx, handed, at); err != nil {
		if atErr != nil {
			return out, atErr
		}
		if errors.Is(err, cluster.ErrNotLeader) {
			return out, fmt.Errorf("%v; nothing was restored: %w", err, api.ErrUnavailable)
		}
		if errors.Is(err, cluster.ErrDataDir) {
			// Raft could not write the restored state to the data_dir:
			// nothing was restored, worth trying again once the disk has
			// room (503, as a write the leader could not store).
			return out, fmt.Errorf("%w: %w", err, api.ErrUnavailable)
		}
		return out, fmt.Errorf("restoring through raft: %w", err)
	}
	st, _ := a.node.Status()
	out.Queue = restoredQueue(a.fsm.Act(), o, by, held)
	a.log.Warn("replicated state replaced by a snapshot an operator restored", "backup_index", meta.Index, "backup_time", meta.Time,
		"backup_taken_by", meta.TakenBy, "index", st.LastIndex, "series", summary.Series, "migration_requests", summary.Requests,
		"queue_paused", out.Queue.Paused, "queue_kept", out.Queue.Kept)
	switch {
	case !o.KeepQueue && held.Paused:
		a.log.Info("migration queue paused by the snapshot restore, over the backup's own pause: none of the restored requests starts a move until an operator resumes it",
			"paused_by", by, "backup_paused_by", held.By)
	case !o.KeepQueue:
		a.log.Info("migration queue paused by the snapshot restore: none of the restored requests starts a move until an operator resumes it",
			"paused_by", by)
	}
	out.Restored = SnapshotInfo(meta, summary)
	out.Restored.SHA256 = hex.EncodeToString(h.Sum(nil))
	out.Replaced = replaced
	out.Index = st.LastIndex
	out.AnsweredBy = a.name
	return out, nil
}

// restoreFile creates a file to hold a restore's state, removed by
// removeRestoreFile (or, left by a stopped process, at the next start).
func (a *Agent) restoreFile() (*os.File, error) {
	f, err := createRestoreFile(a.restoreDir(), restoreLeftovers)
	if err != nil {
		if derr := uploadDiskError(err); derr != nil {
			return nil, derr
		}
		return nil, fmt.Errorf("a file to hold the uploaded state: %w", err)
	}
	return f, nil
}

// createRestoreFile is os.CreateTemp; tests replace it.
var createRestoreFile = os.CreateTemp

// uploadDiskError is the error of a restore whose upload (or the state
// rewritten from it) could not be written to the data_dir because its
// disk fails (full, read-only, I/O errors): nothing was restored, worth
// trying again once the disk has room, 503 as a write the leader could
// not store; nil for any other error.
func uploadDiskError(err error) error {
	cause, ok := cluster.DiskCause(err)
	if !ok {
		return nil
	}
	return fmt.Errorf("this server cannot write the snapshot's state where it checks it before restoring it (its data_dir; in dev mode the system's temporary directory): %s (%v); nothing was restored: %w", cause, err, api.ErrUnavailable)
}

func removeRestoreFile(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func rewind(f *os.File) error {
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// restorePausedBy is who paused the queue, as a restore of the backup
// meta records it in the state.
func restorePausedBy(meta cluster.BackupMeta) string {
	return fmt.Sprintf("snapshot restore (the backup of index %d taken %s)", meta.Index, meta.Time.UTC().Format(time.RFC3339))
}

// restoredQueue describes the queue v holds once a restore with o is
// done: by is the restore's paused_by, held the pause the backup's state
// held, which the restore's replaced unless o.KeepQueue. It says what the
// state holds: the restored state, or what was written since (an operator
// who resumed or paused the queue as soon as the new term began).
func restoredQueue(v state.ActView, o api.RestoreOptions, by string, held state.SetQueuePaused) api.RestoredQueue {
	q := api.RestoredQueue{Paused: v.Paused, Kept: o.KeepQueue}
	if v.Paused {
		q.PausedBy = v.PausedBy
	}
	const running = "; its restored requests start their moves as the queue runs them ('foreshape queue pause' pauses it)"
	switch {
	case o.KeepQueue && v.Paused:
		q.Reason = fmt.Sprintf("paused, as the backup had it%s: kept as the restore asked", pausedBy(v))
	case o.KeepQueue:
		q.Reason = "running, as the backup had it: kept as the restore asked" + running
	case v.Paused && v.PausedBy == by:
		q.Reason = "paused by the " + by + ": review the restored requests ('foreshape queue list'), which may have been done or cancelled since, then resume the queue ('foreshape queue resume')"
		if held.Paused {
			q.Reason += fmt.Sprintf("; the backup had it paused already%s", heldBy(held))
		}
	case v.Paused:
		q.Reason = "paused by the restore, then again since" + pausedBy(v)
	default:
		q.Reason = "running: resumed since the restore paused it"
	}
	return q
}

// heldBy is " (by WHO)" for a backup's queue paused by WHO, or "".
func heldBy(p state.SetQueuePaused) string {
	if p.By == "" {
		return ""
	}
	return " (by " + p.By + ")"
}

// pausedBy is " (by WHO)" for a queue paused by WHO, or "" when the
// state does not say.
func pausedBy(v state.ActView) string {
	if v.PausedBy == "" {
		return ""
	}
	return " (by " + v.PausedBy + ")"
}

// checkRestores restores the state read from r into a scratch state
// machine configured as this server's, and says why it cannot.
func (a *Agent) checkRestores(r io.Reader) error {
	scratch, err := state.NewFSM(a.fsm.Config())
	if err != nil {
		return err
	}
	err = scratch.Restore(io.NopCloser(r))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrLayoutMismatch):
		return fmt.Errorf("its series were kept with other tiers or profiles than this cluster's state configuration, and every server must keep the same: %w", err)
	case errors.Is(err, state.ErrUnknownSection):
		return fmt.Errorf("a newer release wrote its state, which this one cannot read whole; restore it with that release: %w", err)
	}
	return fmt.Errorf("its state cannot be restored: %w", err)
}

// currentState summarises the state as it is now.
func (a *Agent) currentState() (api.SnapshotState, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(a.fsm.WriteSnapshot(pw)) }()
	s, err := state.Summarize(pr)
	pr.CloseWithError(io.EOF)
	if err != nil {
		return api.SnapshotState{}, fmt.Errorf("summarising the current state: %w", err)
	}
	return snapshotState(s), nil
}

// restoreLeftovers matches the files RestoreSnapshot keeps an upload in.
const restoreLeftovers = "restore-*.state"

// removeRestoreLeftovers removes from dir the uploads of restores that a
// stopped process left (RestoreSnapshot removes its own as it returns),
// each as large as the state, saying so.
func removeRestoreLeftovers(dir string, log hclog.Logger) {
	left, _ := filepath.Glob(filepath.Join(dir, restoreLeftovers))
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			log.Warn("cannot remove the upload of a snapshot restore an earlier stop left", "file", f, logKeyError, err)
			continue
		}
		log.Info("removed the upload of a snapshot restore an earlier stop left", "file", f)
	}
}

// restoreDir is where an uploaded backup's state waits to be restored.
func (a *Agent) restoreDir() string {
	a.cfgMu.RLock()
	defer a.cfgMu.RUnlock()
	if a.cfg != nil && a.cfg.DataDir != "" && !a.inMemory {
		return a.cfg.DataDir
	}
	return ""
}

// SnapshotInfo describes a backup for the API: its metadata and the
// summary of its state.
func SnapshotInfo(m cluster.BackupMeta, s state.Summary) api.SnapshotInfo {
	out := api.SnapshotInfo{
		Version: m.Version, Index: m.Index, Term: m.Term, Time: m.Time, ClusterID: m.ClusterID, TakenBy: m.TakenBy,
		Release: m.Release, StateFormat: m.StateFormat, StateProtocol: m.StateProtocol, Size: m.Size, State: snapshotState(s),
	}
	for _, sv := range m.Servers {
		out.Servers = append(out.Servers, api.SnapshotServer{ID: sv.ID, Address: sv.Address, Voter: sv.Voter})
	}
	return out
}

func snapshotState(s state.Summary) api.SnapshotState {
	return api.SnapshotState{
		AppliedIndex: s.Applied, Series: s.Series, Requests: s.Requests, Reservations: s.Reservations, Intents: s.Intents,
		ScaleActions: s.ScaleActions, Decisions: s.Decisions, Servers: s.Servers, Clients: s.Clients, Layout: layout(s),
	}
}

// layout writes a state's tiers and profiles as "1m0s×1440 5m0s×4032 …;
// node/: 1m0s×360".
func layout(s state.Summary) string {
	tiers := func(ts []state.Tier) string {
		var parts []string
		for _, t := range ts {
			parts = append(parts, fmt.Sprintf("%s×%d", t.Step, t.Points))
		}
		return strings.Join(parts, " ")
	}
	out := tiers(s.Tiers)
	for _, p := range s.Profiles {
		out += fmt.Sprintf("; %s: %s", p.Prefix, tiers(p.Tiers))
	}
	return out
}

// InspectSnapshot reads a whole backup from r, checking it as a restore
// does short of a server's configuration, and describes it.
func InspectSnapshot(r io.Reader) (api.SnapshotInfo, error) {
	pr, pw := io.Pipe()
	h := sha256.New()
	type summarized struct {
		s   state.Summary
		err error
	}
	done := make(chan summarized, 1)
	go func() {
		s, err := state.Summarize(pr)
		// Drain what follows, so that ReadBackup reaches the checksums.
		_, _ = io.Copy(io.Discard, pr)
		done <- summarized{s, err}
	}()
	meta, err := cluster.ReadBackup(r, io.MultiWriter(pw, h))
	pw.Close()
	sum := <-done
	if err != nil {
		return api.SnapshotInfo{}, err
	}
	if sum.err != nil {
		if errors.Is(sum.err, state.ErrUnknownSection) {
			return api.SnapshotInfo{}, fmt.Errorf("a newer release (foreshape %s, state format %d) wrote its state: %w", meta.Release, meta.StateFormat, sum.err)
		}
		return api.SnapshotInfo{}, fmt.Errorf("its state cannot be read: %w", sum.err)
	}
	info := SnapshotInfo(meta, sum.s)
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	return info, nil
}
