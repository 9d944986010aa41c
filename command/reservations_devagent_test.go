package command

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestDevAgentReservationStates runs `foreshape agent -dev` (as make dev
// does, faster) through its rack maintenance, reading `reservations -json`
// as the agent holds room for the rack's moves: every reservation is
// planned, placed, held, handing_over or released, as reservations -help
// and docs/api.md say, and held ones name a placeholder job Nomad has
// registered and placed whole: nothing of it queued (its job summary),
// as the agent last saw it.
func TestDevAgentReservationStates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	httpAddr, out, errb := startDevAgent(t)
	nomadAddr := regexp.MustCompile(`Nomad: (http://\S+)`)
	var nomad string
	for deadline := time.Now().Add(30 * time.Second); nomad == ""; time.Sleep(50 * time.Millisecond) {
		if m := nomadAddr.FindStringSubmatch(out.String()); m != nil {
			nomad = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no banner within 30s:\n%s\n%s", out.String(), tailLines(errb.String(), 30))
		}
	}
	seen := map[string]bool{}
	heldJobs := map[string]bool{}
	for deadline := time.Now().Add(90 * time.Second); !seen[api.ReservationReleased] || !seen[api.ReservationHeld]; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the states seen in 90s, %v, lack held or released\n%s", seen, tailLines(errb.String(), 30))
		}
		code, stdout, stderr := runCLI(t, "reservations", "-address", httpAddr, "-json")
		if code != ExitOK {
			t.Fatalf("reservations -json: exit %d: %s", code, stderr)
		}
		var rs api.Reservations
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs.Reservations {
			seen[r.State] = true
			if r.State == api.ReservationHeld && !heldJobs[r.Job] {
				// Seen held: Nomad has its placeholder job (200) with
				// nothing queued, unless it was released and purged since
				// (404, rare).
				resp, err := http.Get(nomad + "/v1/job/" + r.Job + "/summary")
				if err != nil {
					t.Fatal(err)
				}
				var sum struct {
					Summary map[string]struct{ Queued int }
				}
				err = json.NewDecoder(resp.Body).Decode(&sum)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				for g, s := range sum.Summary {
					if s.Queued > 0 {
						t.Errorf("reservation %s held while Nomad has %d of its placeholder group %s queued", r.ID, s.Queued, g)
					}
				}
				heldJobs[r.Job] = true
			}
		}
	}
	for s := range seen {
		if !slices.Contains(api.ReservationStates, s) {
			t.Errorf("a reservation in state %q; -help says planned, placed, held, handing_over or released", s)
		}
	}
	registered := 0
	for _, ok := range heldJobs {
		if ok {
			registered++
		}
	}
	if registered == 0 {
		t.Errorf("no placeholder job of a held reservation was found in Nomad: %v", heldJobs)
	}
}
