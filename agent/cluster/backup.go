package cluster

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// A backup is a point-in-time copy of the replicated state that an
// operator keeps outside the cluster and restores into it, or into a new
// cluster once every server is lost (foreshape operator snapshot). It is a
// gzip-compressed tar archive of three files, in this order:
//
//	meta.json   BackupMeta: the Raft index and term, when, by which
//	            release, the state's format, the servers' configuration,
//	            and the state's size
//	state.bin   the state machine's snapshot, as raft keeps it
//	SHA256SUMS  the SHA-256 of meta.json and of state.bin, as sha256sum
//	            writes them
//
// The checksums come last so that a backup is written in one pass, as the
// state streams out of raft. ReadBackup checks everything a reader can:
// the gzip stream and its CRC, the tar framing, that meta.json comes first
// and names this format, the state's size, both checksums, and that
// nothing follows. A backup stays readable by `tar xzf` and
// `sha256sum -c`.
const (
	// BackupKind is meta.json's kind.
	BackupKind = "foreshape-snapshot"
	// BackupVersion is the archive's version; a reader refuses a later
	// one.
	BackupVersion = 1

	backupMetaFile  = "meta.json"
	backupStateFile = "state.bin"
	backupSumsFile  = "SHA256SUMS"

	// maxBackupMeta bounds meta.json and SHA256SUMS: a few kilobytes.
	maxBackupMeta = 1 << 20
)

var (
	// ErrNotBackup is wrapped by ReadBackup's error for a file that is
	// not a foreshape backup at all.
	ErrNotBackup = errors.New("not a foreshape snapshot")
	// ErrBackupTruncated is wrapped for a backup that ends early.
	ErrBackupTruncated = errors.New("truncated")
	// ErrBackupCorrupt is wrapped for a backup whose bytes changed since
	// it was written: a checksum differs, or the compressed stream is
	// damaged.
	ErrBackupCorrupt = errors.New("corrupted")
	// ErrBackupVersion is wrapped for a backup of an archive version this
	// release cannot read.
	ErrBackupVersion = errors.New("written by a newer release")
	// ErrBackupUnread is wrapped when reading the backup itself failed
	// (a file's read error, an upload cut off or too slow): nothing is
	// known of the backup's bytes.
	ErrBackupUnread = errors.New("could not be read whole")
)

// BackupMeta is a backup's meta.json.
type BackupMeta struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	// Index and Term are the Raft index and term of the last entry the
	// state holds.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Time is when the leader took it, by its clock.
	Time time.Time `json:"time"`
	// ClusterID is the cluster's ID (identity.go) and TakenBy the leader's
	// node ID.
	ClusterID string `json:"cluster_id,omitempty"`
	TakenBy   string `json:"taken_by"`
	// Release is the foreshape version of the leader that took it.
	Release string `json:"foreshape_version"`
	// StateFormat is the state's snapshot format version and
	// StateProtocol the state protocol of the release that wrote it
	// (agent/state).
	StateFormat   int `json:"state_format"`
	StateProtocol int `json:"state_protocol"`
	// Servers is the Raft configuration when it was taken. A restore
	// keeps the configuration of the cluster it restores into.
	Servers []Server `json:"servers"`
	// Size is state.bin's size in bytes.
	Size int64 `json:"state_size"`
}

// BackupInfo is what the owner adds to a backup's metadata: its release
// and its state's format and protocol.
type BackupInfo struct {
	Release       string
	StateFormat   int
	StateProtocol int
}

// WriteBackup writes a backup of state, which holds exactly meta.Size
// bytes, to w. meta's Kind and Version are set here.
func WriteBackup(w io.Writer, meta BackupMeta, state io.Reader) error {
	meta.Kind, meta.Version = BackupKind, BackupVersion
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	mb = append(mb, '\n')
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	tw := tar.NewWriter(zw)
	mtime := meta.Time.Truncate(time.Second)
	file := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	}
	if err := file(backupMetaFile, int64(len(mb))); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	if err := file(backupStateFile, meta.Size); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(tw, io.TeeReader(state, h))
	if err != nil {
		return fmt.Errorf("cluster: backup: writing the state: %w", err)
	}
	if n != meta.Size {
		return fmt.Errorf("cluster: backup: the state held %d bytes, not the %d announced", n, meta.Size)
	}
	ms := sha256.Sum256(mb)
	sums := fmt.Sprintf("%s  %s\n%s  %s\n", hex.EncodeToString(ms[:]), backupMetaFile, hex.EncodeToString(h.Sum(nil)), backupStateFile)
	if err := file(backupSumsFile, int64(len(sums))); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	if _, err := io.WriteString(tw, sums); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("cluster: backup: %w", err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// sourceError marks an error of the reader a backup is read from.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// ReadBackup reads a whole backup from r, copies its state to state, and
// returns its metadata once every check has passed (see BackupMeta's
// format). Its error says what is wrong, wrapping ErrNotBackup,
// ErrBackupTruncated, ErrBackupCorrupt or ErrBackupVersion; state may then
// hold part of the state, which the caller discards. A file whose
// archive cannot be read is judged by its gzip stream, read to its end:
// one that ends early is truncated, one that fails its CRC corrupted, and
// one that is whole is not a backup (before meta.json is read) or
// corrupted (after).
func ReadBackup(r io.Reader, state io.Writer) (BackupMeta, error) {
	var meta BackupMeta
	cr := &countingReader{r: r}
	br := bufio.NewReader(cr)
	var se *sourceError
	switch head, err := br.Peek(2); {
	case errors.As(err, &se):
		return meta, streamError(err, cr.n)
	case len(head) == 0 && err != nil:
		return meta, fmt.Errorf("%w: the file is empty", ErrNotBackup)
	case !bytes.HasPrefix([]byte{0x1f, 0x8b}, head) || (len(head) == 1 && err == nil):
		return meta, fmt.Errorf("%w: it is not gzip-compressed (a backup is the .tar.gz that foreshape operator snapshot save writes)", ErrNotBackup)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return meta, streamError(err, cr.n)
	}
	zr.Multistream(false)
	known := false // meta.json says this is a backup
	// fail judges an error met reading the archive by the gzip stream.
	fail := func(err error) error {
		if errors.As(err, new(*sourceError)) {
			return streamError(err, cr.n)
		}
		if _, zerr := io.Copy(io.Discard, zr); zerr != nil {
			return streamError(zerr, cr.n)
		}
		switch {
		case errors.Is(err, ErrNotBackup) || errors.Is(err, ErrBackupCorrupt) || errors.Is(err, ErrBackupVersion):
			return err
		case known:
			return fmt.Errorf("%w: %v", ErrBackupCorrupt, err)
		}
		return fmt.Errorf("%w: %v", ErrNotBackup, err)
	}
	tr := tar.NewReader(zr)
	next := func(want string) (*tar.Header, error) {
		h, err := tr.Next()
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("the archive ends before %s", want)
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", want, err)
		case h.Name != want:
			return nil, fmt.Errorf("the archive holds %q where %s should be", h.Name, want)
		}
		return h, nil
	}
	h, err := next(backupMetaFile)
	if err != nil {
		return meta, fail(err)
	}
	if h.Size > maxBackupMeta {
		return meta, fail(fmt.Errorf("%s is %d bytes", backupMetaFile, h.Size))
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return meta, fail(err)
	}
	if err := json.Unmarshal(mb, &meta); err != nil || meta.Kind != BackupKind {
		return meta, fail(fmt.Errorf("its %s does not say kind %q", backupMetaFile, BackupKind))
	}
	known = true
	switch {
	case meta.Version > BackupVersion:
		return meta, fail(fmt.Errorf("%w: archive version %d, this release reads version %d", ErrBackupVersion, meta.Version, BackupVersion))
	case meta.Version < 1:
		return meta, fail(fmt.Errorf("%w: archive version %d, which no release writes", ErrBackupCorrupt, meta.Version))
	}
	if h, err = next(backupStateFile); err != nil {
		return meta, fail(err)
	}
	if h.Size != meta.Size {
		return meta, fail(fmt.Errorf("%s holds %d bytes, %s says %d", backupStateFile, h.Size, backupMetaFile, meta.Size))
	}
	sh := sha256.New()
	if _, err := io.Copy(io.MultiWriter(stateWriter{state}, sh), tr); err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return meta, we.err
		}
		return meta, fail(err)
	}
	if _, err = next(backupSumsFile); err != nil {
		return meta, fail(err)
	}
	sb, err := io.ReadAll(io.LimitReader(tr, maxBackupMeta))
	if err != nil {
		return meta, fail(err)
	}
	ms := sha256.Sum256(mb)
	if err := checkSum(sb, backupMetaFile, ms[:]); err != nil {
		return meta, fail(err)
	}
	if err := checkSum(sb, backupStateFile, sh.Sum(nil)); err != nil {
		return meta, fail(err)
	}
	if h, err := tr.Next(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("the archive holds %q after %s", h.Name, backupSumsFile)
		}
		return meta, fail(err)
	}
	// The gzip trailer (its CRC-32 and size) is checked at its end.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return meta, streamError(err, cr.n)
	}
	switch _, err := br.ReadByte(); {
	case err == nil:
		return meta, fmt.Errorf("%w: bytes follow the end of the archive", ErrBackupCorrupt)
	case !errors.Is(err, io.EOF):
		return meta, streamError(err, cr.n)
	}
	return meta, nil
}

// writeError marks an error of ReadBackup's state writer (a full disk),
// which is not the backup's fault.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// stateWriter marks the errors of ReadBackup's state writer.
type stateWriter struct{ w io.Writer }

func (s stateWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// streamError names what a failed read of the compressed archive means:
// it ended early, or its bytes were changed.
func streamError(err error, read int64) error {
	var corrupt flate.CorruptInputError
	var se *sourceError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: reading it failed after %d bytes: %w", ErrBackupUnread, read, se.err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("%w: it ends after %d bytes, in the middle of the archive", ErrBackupTruncated, read)
	case errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt), errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%w: its compressed stream is damaged (%v)", ErrBackupCorrupt, err)
	}
	return fmt.Errorf("%w: %v", ErrBackupCorrupt, err)
}

// checkSum checks that sums (SHA256SUMS) gives sum for name.
func checkSum(sums []byte, name string, sum []byte) error {
	want := hex.EncodeToString(sum)
	for line := range strings.SplitSeq(string(sums), "\n") {
		got, file, ok := strings.Cut(line, "  ")
		if ok && file == name {
			if got != want {
				return fmt.Errorf("%w: the SHA-256 of %s is %s, %s says %s", ErrBackupCorrupt, name, want, backupSumsFile, got)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s gives no checksum of %s", ErrBackupCorrupt, backupSumsFile, name)
}

// SaveBackup takes a snapshot of the state now and writes it to w as a
// backup (WriteBackup); leader only (a *NotLeaderError otherwise). Raft
// writes the snapshot to the snapshot store first, as its own periodic
// snapshots, and compacts the log behind it.
func (n *Node) SaveBackup(ctx context.Context, w io.Writer, info BackupInfo) (BackupMeta, error) {
	if n.raft.State() != raft.Leader {
		return BackupMeta{}, n.notLeader()
	}
	f := n.raft.Snapshot()
	if err := n.await(ctx, "snapshot", f); err != nil {
		// One raft could not write to the data_dir (a full disk) says
		// what fails, as a restore there does.
		if derr := n.disk.err(diskSnapshot); derr != nil && snapshotWriteFailed(err) {
			return BackupMeta{}, fmt.Errorf("cluster: snapshot: %w", derr)
		}
		return BackupMeta{}, err
	}
	sm, rc, err := f.Open()
	if err != nil {
		return BackupMeta{}, fmt.Errorf("cluster: open the snapshot: %w", err)
	}
	defer rc.Close()
	meta := BackupMeta{
		Index: sm.Index, Term: sm.Term, Time: time.Now().UTC(), ClusterID: n.ClusterID(), TakenBy: n.cfg.NodeID,
		Release: info.Release, StateFormat: info.StateFormat, StateProtocol: info.StateProtocol, Size: sm.Size,
	}
	for _, s := range sm.Configuration.Servers {
		addr := string(s.Address)
		if n.mux == nil && n.cfg.Transport == nil {
			addr = InMemoryAddress // dev mode: an ID no peer can dial
		}
		meta.Servers = append(meta.Servers, Server{ID: string(s.ID), Address: addr, Voter: s.Suffrage == raft.Voter})
	}
	if err := WriteBackup(w, meta, rc); err != nil {
		return meta, err
	}
	meta.Kind, meta.Version = BackupKind, BackupVersion
	return meta, nil
}

// RestoreBackup replaces the cluster's state with a backup's state, which
// holds exactly meta.Size bytes (a caller that rewrote the backup's state,
// as the agent does to pause the restored migration queue, passes the
// rewritten state's size); leader only. It is RestoreBackupAt with the
// state as it is, whatever the restore's index.
func (n *Node) RestoreBackup(ctx context.Context, meta BackupMeta, state io.Reader) error {
	return n.RestoreBackupAt(ctx, meta, func(uint64) (io.Reader, int64, error) { return state, meta.Size, nil })
}

// RestoreBackupAt replaces the cluster's state with a backup's state;
// leader only. Raft stores it as a snapshot of this server at an index
// past both its log and the backup's, restores its state machine from
// it, and sends it to every follower; the configuration stays this
// cluster's. The caller must have checked that the state machine
// restores it: raft stops the process (a panic) when it cannot. The
// leadership term ends before the restore, so that no write of its
// leader work lands on the restored state, and a new one starts once the
// restore is done or failed, so that leader work begins from the
// restored state as after an election. No write of the caller comes
// between the restore and the new term: what the restored state must hold
// from its start travels in the state handed here, which every server
// restores whole.
//
// state is called once, after the term ended and the state machine
// applied every entry before it, with the index raft gives the restore
// (one past the last of its log and of the backup's, as hashicorp/raft's
// Restore takes it), and returns the state to hand raft and its size. No
// write comes between: from before the barrier until raft's restore is
// done or failed, Apply waits (restoring), so the index is past every
// index the replaced state showed and no command is applied to the
// replaced state after it, to be dropped by the restore once answered.
// A write sent meanwhile applies to the restored state, at an index past
// the restore's, or fails, not applied, when its context ends first. Only
// an entry no state index counts can still reach the log there (a
// configuration change, the cluster's ID): raft's index is then past it,
// and the one passed is still none a client read.
//
// state must not write through this node (Apply waits for the restore,
// which waits for state); restores run one at a time.
func (n *Node) RestoreBackupAt(ctx context.Context, meta BackupMeta, state func(index uint64) (io.Reader, int64, error)) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	n.restore.Lock()
	defer n.restore.Unlock()
	// The term's leader work ends first: its writes fail from here on
	// (Apply checks the term's context), so none of them lands on the
	// restored state, which a new term reconciles from the start.
	ended := make(chan struct{})
	select {
	case n.endTerm <- ended:
		<-ended
	case <-n.done:
		return ErrClosed
	}
	// The writes that passed Apply's checks before the restore reach raft
	// before this lock is held, so the barrier comes after them; every
	// later one waits until the restore ends (restoring), so that none
	// lands between the reading of the restore's index and the restore.
	restored := make(chan struct{})
	n.applying.Lock()
	n.restoring = restored
	barrier := n.raft.Barrier(timeout(ctx))
	n.applying.Unlock()
	defer func() {
		n.applying.Lock()
		n.restoring = nil
		n.applying.Unlock()
		close(restored)
	}()
	if err := n.await(ctx, "barrier", barrier); err != nil {
		n.restartTerm()
		return err
	}
	n.leadershipLog().Info("restoring a backup: leader work stopped until the state is restored")
	defer n.restartTerm()
	rd, size, err := state(max(n.raft.LastIndex(), meta.Index) + 1)
	if err != nil {
		return err
	}
	sm := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: meta.Index, Term: meta.Term, Size: size}
	if err := n.raft.Restore(sm, rd, timeout(ctx)); err != nil {
		// Raft writes the restored state into a snapshot before its state
		// machine reads it: one it could not write to the data_dir (a
		// full disk) restored nothing, and says what fails, as a command
		// the leader could not store does (applyError).
		if derr := n.disk.err(diskSnapshot); derr != nil && snapshotWriteFailed(err) {
			return fmt.Errorf("cluster: restore: nothing was restored: %w", derr)
		}
		return n.mapError("restore", err)
	}
	return nil
}

// snapshotWriteFailed reports whether err, raft's Restore's or
// Snapshot's, says that writing the snapshot failed (hashicorp/raft's
// restoreUserSnapshot, when nothing was restored yet, and takeSnapshot).
func snapshotWriteFailed(err error) bool {
	for _, p := range []string{"failed to create snapshot", "failed to write snapshot", "failed to persist snapshot", "failed to close snapshot"} {
		if strings.Contains(err.Error(), p) {
			return true
		}
	}
	return false
}

// restartTerm ends the current leadership term and starts a new one, as
// raft's notification of a won election does (watchLeadership): a barrier,
// then the term is published again. When raft has meanwhile told of a
// lost leadership, the new term's barrier fails and it is never published.
func (n *Node) restartTerm() {
	if n.raft.State() != raft.Leader {
		return
	}
	select {
	case n.notifyCh <- true:
		n.leadershipLog().Info("leader work starts again in a new term after a restore")
	default:
		// Full: notifications are waiting, and each starts a term anew.
	}
}
