package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// restoreRecorder is a server's snapshot backend that records the options
// of each restore it is asked for.
type restoreRecorder struct {
	failingOperator
	got []api.RestoreOptions
}

func (*restoreRecorder) AtLeader(http.ResponseWriter, *http.Request) bool { return false }

func (*restoreRecorder) SaveSnapshot(context.Context, io.Writer) error {
	return errors.New("not saved")
}

func (r *restoreRecorder) RestoreSnapshot(_ context.Context, body io.Reader, o api.RestoreOptions) (api.SnapshotRestore, error) {
	_, _ = io.Copy(io.Discard, body)
	r.got = append(r.got, o)
	return api.SnapshotRestore{Restored: api.SnapshotInfo{Version: 1}, Queue: api.RestoredQueue{Paused: !o.KeepQueue}}, nil
}

// TestRestoreKeepQueue: PUT /v1/operator/snapshot takes ?keep_queue=true
// or false (the default: the restore pauses the queue), and refuses
// another value with 400 before restoring anything; the client sends
// keep_queue=true for RestoreOptions.KeepQueue and nothing for nil
// options.
func TestRestoreKeepQueue(t *testing.T) {
	rec := &restoreRecorder{}
	s, err := api.NewServer(nopBackend{}, api.Options{Operator: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := &api.Client{Address: srv.URL}
	ctx := context.Background()
	for _, tc := range []struct {
		o    *api.RestoreOptions
		keep bool
	}{
		{nil, false},
		{&api.RestoreOptions{}, false},
		{&api.RestoreOptions{KeepQueue: true}, true},
	} {
		rec.got = nil
		res, err := c.RestoreSnapshot(ctx, strings.NewReader("backup"), tc.o)
		if err != nil || len(rec.got) != 1 || rec.got[0].KeepQueue != tc.keep || res.Queue.Paused == tc.keep {
			t.Errorf("options %+v: %+v, %v; the server was asked %+v; want keep_queue %v", tc.o, res, err, rec.got, tc.keep)
		}
	}
	for _, q := range []string{"keep_queue=false", "keep_queue=true", "keep_queue=1"} {
		rec.got = nil
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/operator/snapshot?"+q, strings.NewReader("backup"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if keep := q != "keep_queue=false"; resp.StatusCode != 200 || len(rec.got) != 1 || rec.got[0].KeepQueue != keep {
			t.Errorf("?%s: %d, asked %+v", q, resp.StatusCode, rec.got)
		}
	}
	rec.got = nil
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/operator/snapshot?keep_queue=yes", strings.NewReader("backup"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `keep_queue: \"yes\" is not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True or False); nothing was restored`) || len(rec.got) != 0 {
		t.Errorf("?keep_queue=yes: %d %s, asked %+v; want 400 and no restore", resp.StatusCode, b, rec.got)
	}
}

// fullRestore is a snapshot backend whose restore answers with every
// field of the answer set.
type fullRestore struct{ restoreRecorder }

func (*fullRestore) RestoreSnapshot(_ context.Context, body io.Reader, _ api.RestoreOptions) (api.SnapshotRestore, error) {
	_, _ = io.Copy(io.Discard, body)
	state := api.SnapshotState{AppliedIndex: 9, Series: 1, Layout: "1m0s×1440"}
	return api.SnapshotRestore{
		Restored: api.SnapshotInfo{Version: 1, Index: 9, Term: 2, ClusterID: "c1", TakenBy: "s1", Release: "0.1.0",
			StateFormat: 1, StateProtocol: 1, Servers: []api.SnapshotServer{{ID: "s1", Address: "10.0.0.1:7576", Voter: true}},
			Size: 10, SHA256: "ab", State: state},
		Replaced:   state,
		Index:      12,
		AnsweredBy: "s1",
		Queue:      api.RestoredQueue{Paused: true, PausedBy: "snapshot restore", Reason: "paused", PauseError: "from an earlier release"},
	}, nil
}

// TestSnapshotRestoreAnswerFields: the answer of PUT /v1/operator/snapshot
// has the fields docs/api.md lists, by those names.
func TestSnapshotRestoreAnswerFields(t *testing.T) {
	s, err := api.NewServer(nopBackend{}, api.Options{Operator: &fullRestore{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	code, body := send(t, http.MethodPut, srv.URL+"/v1/operator/snapshot", "backup", "")
	if code != http.StatusOK {
		t.Fatalf("restore: %d %s", code, body)
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatal(err)
	}
	var restored map[string]json.RawMessage
	if err := json.Unmarshal(answer["restored"], &restored); err != nil {
		t.Fatal(err)
	}
	stateFields := "applied_index client_agents decisions intents layout migration_requests reservations scale_actions series servers"
	for _, c := range []struct {
		what string
		raw  json.RawMessage
		want string
	}{
		{"the answer", json.RawMessage(body), "answered_by index queue replaced restored"},
		{"restored", answer["restored"], "cluster_id foreshape_version index servers state state_format state_protocol state_sha256 state_size taken_by term time version"},
		{"restored.state", restored["state"], stateFields},
		{"replaced", answer["replaced"], stateFields},
		{"queue", answer["queue"], "kept pause_error paused paused_by reason"},
	} {
		if got := strings.Join(keys(t, c.raw), " "); got != c.want {
			t.Errorf("%s has the fields %s, want %s", c.what, got, c.want)
		}
	}
}
