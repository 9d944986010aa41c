package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SnapshotBackend serves GET and PUT /v1/operator/snapshot: backups of
// the replicated state. The agent's OperatorBackend implements it; one
// that does not answers 503.
type SnapshotBackend interface {
	// AtLeader answers r by passing it to the leader when this server
	// does not lead, and reports whether it did: backups are taken and
	// restored on the leader.
	AtLeader(w http.ResponseWriter, r *http.Request) bool
	// SaveSnapshot writes a backup of the replicated state, taken now,
	// to w; on the leader only.
	SaveSnapshot(ctx context.Context, w io.Writer) error
	// RestoreSnapshot replaces the replicated state with the backup read
	// from body; on the leader only. A backup it refuses (truncated,
	// corrupted, not a backup, of a format or layout this cluster cannot
	// take) is an error wrapping ErrInvalid, and nothing changed. The
	// restored migration queue is paused by the restore unless
	// o.KeepQueue; a pause that fails is said in the answer's Queue, not
	// as an error: the state is restored.
	RestoreSnapshot(ctx context.Context, body io.Reader, o RestoreOptions) (SnapshotRestore, error)
}

// RestoreOptions are a restore's options: PUT /v1/operator/snapshot's
// query parameters.
type RestoreOptions struct {
	// KeepQueue (?keep_queue=true) keeps the migration queue paused or
	// running as the backup had it. By default the restore pauses it, so
	// that none of the restored requests (which may have been done or
	// cancelled since the backup) starts a move before an operator has
	// looked at them.
	KeepQueue bool
}

// keepQueueParam is PUT /v1/operator/snapshot's query parameter for
// RestoreOptions.KeepQueue.
const keepQueueParam = "keep_queue"

// SnapshotContentType is the type of a backup: a gzip-compressed tar
// archive.
const SnapshotContentType = "application/gzip"

// SnapshotReadTimeout bounds reading a backup uploaded to PUT
// /v1/operator/snapshot, on the leader and on a server that passes it on,
// in place of the server's bound for other requests' bodies: a large
// state takes longer than 30 s on a slow link.
const SnapshotReadTimeout = time.Hour

// IsSnapshotUpload reports whether r uploads a backup to restore.
func IsSnapshotUpload(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Path == "/v1/operator/snapshot"
}

// SnapshotState is what a state holds: the index it had applied and how
// many of each thing.
type SnapshotState struct {
	AppliedIndex uint64 `json:"applied_index"`
	Series       int    `json:"series"`
	Requests     int    `json:"migration_requests"`
	Reservations int    `json:"reservations"`
	Intents      int    `json:"intents"`
	ScaleActions int    `json:"scale_actions"`
	Decisions    int    `json:"decisions"`
	Servers      int    `json:"servers"`
	Clients      int    `json:"client_agents"`
	// Layout is the series tiers (and profiles) the state was kept
	// with, as "1m0s×1440 5m0s×4032 …"; a restore needs the same.
	Layout string `json:"layout,omitempty"`
}

// SnapshotInfo describes a backup: its metadata and what its state holds.
type SnapshotInfo struct {
	// Version is the archive's version.
	Version int `json:"version"`
	// Index and Term are the Raft index and term the state was taken at.
	Index     uint64    `json:"index"`
	Term      uint64    `json:"term"`
	Time      time.Time `json:"time"`
	ClusterID string    `json:"cluster_id,omitempty"`
	TakenBy   string    `json:"taken_by"`
	// Release is the foreshape version that took it.
	Release       string `json:"foreshape_version"`
	StateFormat   int    `json:"state_format"`
	StateProtocol int    `json:"state_protocol"`
	// Servers is the Raft configuration when it was taken.
	Servers []SnapshotServer `json:"servers"`
	// Size is the state's size in bytes, uncompressed; SHA256 its
	// checksum.
	Size   int64         `json:"state_size"`
	SHA256 string        `json:"state_sha256,omitempty"`
	State  SnapshotState `json:"state"`
}

// SnapshotServer is a server of a backup's Raft configuration.
type SnapshotServer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// SnapshotRestore is the answer of PUT /v1/operator/snapshot.
type SnapshotRestore struct {
	// Restored is the backup now in place; Replaced what the cluster's
	// state held before.
	Restored SnapshotInfo  `json:"restored"`
	Replaced SnapshotState `json:"replaced"`
	// Index is the Raft index the restored state stands at in this
	// cluster, past its log and the backup's index.
	Index      uint64 `json:"index"`
	AnsweredBy string `json:"answered_by"`
	// Queue is the migration queue as the restore left it.
	Queue RestoredQueue `json:"queue"`
}

// RestoredQueue is the migration queue as a restore left it, read from
// the leader's state once the restore was done.
type RestoredQueue struct {
	// Paused says whether the queue is paused: a paused queue starts no
	// move until 'foreshape queue resume'.
	Paused bool `json:"paused"`
	// PausedBy is who or what paused it, as the state records it: the
	// restore, naming the backup, or, when the backup's own state was
	// kept, whoever paused it before the backup was taken.
	PausedBy string `json:"paused_by,omitempty"`
	// Kept is true when the queue is paused or running as the backup had
	// it: keep_queue asked so (or, from an agent of an earlier release,
	// the restore's pause failed).
	Kept bool `json:"kept"`
	// Reason says in words why the queue is paused or running.
	Reason string `json:"reason"`
	// PauseError is set only by agents of earlier releases, which paused
	// the queue with a write after the restore: it is why that write
	// failed, the queue left as the backup had it (Paused says which).
	// This release pauses the queue in the state it restores, and never
	// sets it.
	PauseError string `json:"pause_error,omitempty"`
}

func (s *Server) routeSnapshot() {
	s.route("GET /v1/operator/snapshot", s.operator(s.saveSnapshot))
	s.route("PUT /v1/operator/snapshot", s.operator(s.restoreSnapshot), keepQueueParam)
}

// snapshotBackend is b's SnapshotBackend, or nil (answered 503).
func snapshotBackend(w http.ResponseWriter, b OperatorBackend) SnapshotBackend {
	sb, ok := b.(SnapshotBackend)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "this agent cannot save or restore snapshots")
	}
	return sb
}

// saveSnapshot answers GET /v1/operator/snapshot with a backup taken on
// the leader. An error once the backup has started to stream cannot
// change the status: the connection is then cut, so that the client
// never takes what it got for a whole backup (which the archive's
// checksums would refuse anyway).
func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request, b OperatorBackend) {
	sb := snapshotBackend(w, b)
	if sb == nil || sb.AtLeader(w, r) {
		return
	}
	sw := &startedWriter{w: w}
	if err := sb.SaveSnapshot(r.Context(), sw); err != nil {
		if !sw.started {
			s.backendError(w, r, err)
			return
		}
		s.log.Error("snapshot failed while streaming; the connection is cut", "error", err, "remote_addr", caller(r))
		panic(http.ErrAbortHandler)
	}
}

// startedWriter sets the backup's headers at its first byte.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	if !sw.started {
		sw.started = true
		sw.w.Header().Set("Content-Type", SnapshotContentType)
		sw.w.WriteHeader(http.StatusOK)
	}
	return sw.w.Write(p)
}

// restoreSnapshot answers PUT /v1/operator/snapshot: the body is a
// backup, which replaces the cluster's state.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, b OperatorBackend) {
	var o RestoreOptions
	if v := r.URL.Query().Get(keepQueueParam); v != "" {
		keep, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %q %s; nothing was restored", keepQueueParam, v, notBool))
			return
		}
		o.KeepQueue = keep
	}
	sb := snapshotBackend(w, b)
	if sb == nil {
		return
	}
	// The upload may take longer than any other request's body, on the
	// leader and on a server that passes it on alike.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(SnapshotReadTimeout))
	if sb.AtLeader(w, r) {
		return
	}
	res, err := sb.RestoreSnapshot(r.Context(), r.Body, o)
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	s.writeJSON(w, r, res)
}

// snapshotHTTP is the client's HTTP client for backups: c.HTTP without
// its overall timeout, since a large state streams for longer than
// DefaultTimeout; ctx bounds the call.
func (c *Client) snapshotHTTP() *http.Client {
	if c.HTTP == nil {
		return &http.Client{}
	}
	hc := *c.HTTP
	hc.Timeout = 0
	return &hc
}

// snapshotRequest sends one request of a backup.
func (c *Client) snapshotRequest(ctx context.Context, method string, q url.Values, body io.Reader) (*http.Response, error) {
	base := c.Address
	if base == "" {
		base = DefaultAddress
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := strings.TrimRight(base, "/") + "/v1/operator/snapshot"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", SnapshotContentType)
	}
	if c.Token != "" {
		req.Header.Set("X-Foreshape-Token", c.Token)
	}
	resp, err := c.snapshotHTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = notFromAnAgent(method, "/v1/operator/snapshot", base, b)
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// SaveSnapshot calls GET /v1/operator/snapshot and copies the backup to
// w, returning how many bytes it copied. An answer cut short is an error
// (the agent cuts the connection when the backup fails midway), but
// only reading the backup back (ReadBackup) proves it whole.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.snapshotRequest(ctx, http.MethodGet, nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, answerError(resp.Request, "reading the snapshot", err)
	}
	return n, nil
}

// RestoreSnapshot calls PUT /v1/operator/snapshot with the backup read
// from body. o may be nil: the restored queue is then paused by the
// restore (RestoreOptions).
func (c *Client) RestoreSnapshot(ctx context.Context, body io.Reader, o *RestoreOptions) (SnapshotRestore, error) {
	var out SnapshotRestore
	var q url.Values
	if o != nil && o.KeepQueue {
		q = url.Values{keepQueueParam: {"true"}}
	}
	resp, err := c.snapshotRequest(ctx, http.MethodPut, q, body)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return out, answerError(resp.Request, "reading the answer", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, answerError(resp.Request, "decoding the answer", err)
	}
	if out.Restored.Version == 0 {
		return out, errors.New("api: the agent's answer to the restore names no backup")
	}
	return out, nil
}
