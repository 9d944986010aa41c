package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestHolds: a hold catches the calls it names and never answers them;
// with apply the call takes effect first. The request log tells the two
// apart, GET /v1/sim/faults counts what each hold caught, and a hold's
// count lets later calls through.
func TestHolds(t *testing.T) {
	c := newTestCluster(t, webJob)
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	allocs, _, err := client.Jobs().Allocations("web", false, nil)
	if err != nil || len(allocs) < 3 {
		t.Fatalf("allocations %v, %v", allocs, err)
	}
	if err := c.SetFaults(Faults{Holds: []Hold{
		{Method: "PUT", Path: "/v1/allocation/*/stop", Count: 1},
		{Path: "/v1/allocation/*/stop", Apply: true, Count: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	// stop is one stop call given up on after 200ms of wall time.
	stop := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		a, _, err := client.Allocations().Info(id, nil) // reads pass: the holds name a write
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.Allocations().Stop(a, (&api.QueryOptions{}).WithContext(ctx))
		return err
	}
	desired := func(id string) string {
		a, _, err := client.Allocations().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a.DesiredStatus
	}
	if err := stop(allocs[0].ID); err == nil {
		t.Fatal("held stop answered")
	}
	if err := stop(allocs[1].ID); err == nil {
		t.Fatal("held (applied) stop answered")
	}
	if err := stop(allocs[2].ID); err != nil {
		t.Fatalf("a stop after both holds' counts: %v", err)
	}
	if got := desired(allocs[0].ID); got != api.AllocDesiredStatusRun {
		t.Errorf("the dropped stop took effect: desired %s", got)
	}
	for _, a := range allocs[1:3] {
		if got := desired(a.ID); got != api.AllocDesiredStatusStop {
			t.Errorf("%s: desired %s after an applied or answered stop", a.ID, got)
		}
	}
	// What each hold caught, as a test polling the sim reads it.
	resp, err := http.Get(client.Address() + "/v1/sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	var f Faults
	err = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if err != nil || len(f.Holds) != 2 || f.Holds[0].Caught != 1 || f.Holds[1].Caught != 1 {
		t.Fatalf("faults %+v, %v; want each hold to have caught one", f, err)
	}
	// The log: a held request is written once its client has given up.
	type rec struct {
		status, applied int
		held, ok        bool
	}
	want := map[string]rec{
		allocs[0].ID: {0, 0, true, false},
		allocs[1].ID: {0, 200, true, true},
		allocs[2].ID: {200, 0, false, true},
	}
	got := map[string]rec{}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(got) < 3; time.Sleep(5 * time.Millisecond) {
		for _, r := range c.Truth().Requests {
			for id := range want {
				if strings.HasPrefix(r.Path, "/v1/allocation/"+id+"/stop") {
					got[id] = rec{r.Status, r.Applied, r.Held, r.Succeeded()}
				}
			}
		}
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("stop of %s logged %+v, want %+v", id, got[id], w)
		}
	}
	if err := c.SetFaults(Faults{Holds: []Hold{{Path: "v1/jobs"}}}); err == nil {
		t.Error("a hold path without a leading / was accepted")
	}
}

func TestHoldMatches(t *testing.T) {
	for _, tc := range []struct {
		hold         Hold
		method, path string
		want         bool
	}{
		{Hold{Path: "/v1/jobs"}, "PUT", "/v1/jobs", true},
		{Hold{Path: "/v1/jobs", Method: "post"}, "PUT", "/v1/jobs", false},
		{Hold{Path: "/v1/job/*/scale"}, "POST", "/v1/job/foreshape-reserve-rs-1/scale", true},
		{Hold{Path: "/v1/job/*/scale"}, "POST", "/v1/job//scale", false},
		{Hold{Path: "/v1/job/*"}, "DELETE", "/v1/job/x/scale", false},
		{Hold{Path: "/v1/allocation/*/stop"}, "GET", "/v1/allocation/abc", false},
	} {
		if got := tc.hold.matches(tc.method, tc.path); got != tc.want {
			t.Errorf("%+v matches %s %s = %v, want %v", tc.hold, tc.method, tc.path, got, tc.want)
		}
	}
}

func TestScenarioHolds(t *testing.T) {
	sc := mustScenario(t, smallScenario+`
fault {
  hold {
    method = "PUT"
    path   = "/v1/jobs"
    apply  = true
    count  = 2
  }
}
`)
	want := Hold{Method: "PUT", Path: "/v1/jobs", Apply: true, Count: 2}
	if len(sc.Faults.Holds) != 1 || sc.Faults.Holds[0] != want {
		t.Errorf("holds %+v, want [%+v]", sc.Faults.Holds, want)
	}
}
