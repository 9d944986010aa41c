package api_test

import (
	"context"
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
	if resp.StatusCode != 400 || !strings.Contains(string(b), `keep_queue: \"yes\" is not true or false; nothing was restored`) || len(rec.got) != 0 {
		t.Errorf("?keep_queue=yes: %d %s, asked %+v; want 400 and no restore", resp.StatusCode, b, rec.got)
	}
}
