package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
	"github.com/foreshape/foreshape/agent/state"
)

// TestSubmissionReasonIsBounded: a submission's reason longer than
// api.MaxReason bytes is refused (400 naming reason), changing nothing;
// one of api.MaxReason bytes is queued whole. The agent took any reason
// under the body's 64 KiB and cut it to 1 KiB in the queue and the
// decision log without a word: on make dev's agent a reason of 1,503
// bytes was answered 201, and its submit decision kept the first 1,024
// bytes of "queue node … (5500 MHz / 9216 MiB): REASON", its end lost.
func TestSubmissionReasonIsBounded(t *testing.T) {
	if api.MaxReason*2 > state.MaxReason {
		t.Fatalf("api.MaxReason %d leaves the submit decision's own words under half of the %d bytes the state keeps of a reason", api.MaxReason, state.MaxReason)
	}
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	long := strings.Repeat("é", api.MaxReason/2) + "x" // one byte over
	body, _ := json.Marshal(api.Submission{Node: "n1", Target: "dc2", Reason: long})
	resp, err := http.Post(addr+"/v1/queue", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if want := "reason: 513 bytes; at most 512"; resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, want) {
		t.Errorf("a reason of %d bytes: %d %q; want 400 saying %q", len(long), resp.StatusCode, e.Error, want)
	}
	if q, _ := c.Queue(ctx, nil); len(q.Requests) != 0 {
		t.Errorf("a refused submission was queued: %+v", q.Requests)
	}
	fits := long[:len(long)-1]
	id, err := c.Submit(ctx, api.Submission{Node: "n1", Target: "dc2", Reason: fits})
	if err != nil {
		t.Fatalf("a reason of %d bytes: %v", len(fits), err)
	}
	if r, _ := c.Request(ctx, id); r.Reason != fits {
		t.Errorf("reason kept as %d bytes, want the %d sent", len(r.Reason), len(fits))
	}
}

// TestSubmissionKeyFoldedAsGoFoldsIt: a key Go's decoder takes for a
// field by Unicode case folding, not only ASCII's ("reaſon", with a long
// s, is reason to it), is refused as one in another case is: it passed
// the check, so {"reason":"a","reaſon":"b"} queued reason b, the field
// given twice without a word.
func TestSubmissionKeyFoldedAsGoFoldsIt(t *testing.T) {
	addr, c := serveAct(t, apitest.New(), api.Options{})
	for _, body := range []string{`{"node":"n1","target":"dc2","reaſon":"b"}`, `{"node":"n1","target":"dc2","reason":"a","reaſon":"b"}`} {
		resp, err := http.Post(addr+"/v1/queue", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if want := `field "reaſon": did you mean "reason"?`; resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, want) {
			t.Errorf("%s: %d %q; want 400 saying %q", body, resp.StatusCode, e.Error, want)
		}
	}
	if q, _ := c.Queue(context.Background(), nil); len(q.Requests) != 0 {
		t.Errorf("queued %+v", q.Requests)
	}
}
