package migrate

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// workersBlock is actPolicies' first scale block of dc2, which
// blindPolicies replaces.
const workersBlock = `  scale "workers" {
    min      = 0
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
`

// blindPolicies are actPolicies with dc2's "workers" block scaling
// through target (a webhook or exec block) up to max, followed by a
// nomad-job block, "more".
func blindPolicies(t *testing.T, target string, max int) string {
	t.Helper()
	pols := strings.Replace(actPolicies, workersBlock, fmt.Sprintf(`  scale "workers" {
    min      = 0
    max      = %d
    cooldown = "10m"
%s
  }
  scale "more" {
    min      = 0
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
`, max, target), 1)
	if pols == actPolicies {
		t.Fatal("the test's policies have no workers block to replace")
	}
	return pols
}

// blindReceiver is a webhook's or a command's end of a blind scale
// target: the counts it was sent, in order.
type blindReceiver struct {
	target string // the HCL target block
	counts func() []int
}

// webhookReceiver answers every request 200 and keeps its count.
func webhookReceiver(t *testing.T) blindReceiver {
	var mu sync.Mutex
	var counts []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p target.Payload
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		mu.Lock()
		counts = append(counts, p.Count)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return blindReceiver{
		target: fmt.Sprintf("    target \"webhook\" {\n      url = %q\n    }", srv.URL),
		counts: func() []int {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(counts)
		},
	}
}

// execReceiver is a command that appends each payload it reads to a file
// and exits 0.
func execReceiver(t *testing.T) blindReceiver {
	dir := t.TempDir()
	script, log := filepath.Join(dir, "scale.sh"), filepath.Join(dir, "payloads")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >> \""+log+"\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return blindReceiver{
		target: fmt.Sprintf("    target \"exec\" {\n      command = [%q]\n    }", script),
		counts: func() []int {
			b, err := os.ReadFile(log)
			if os.IsNotExist(err) {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			var counts []int
			for line := range strings.Lines(string(b)) {
				var p target.Payload
				if err := json.Unmarshal([]byte(line), &p); err != nil {
					t.Fatalf("payload %q: %v", line, err)
				}
				counts = append(counts, p.Count)
			}
			return counts
		},
	}
}

// TestScaleBlockAskedItsMaxLetsTheNextAct: dc2's first scale block,
// "workers", scales through a webhook or a command, which cannot tell its
// count, up to max 2; its second, "more", through a target that can.
// Forecast hotspots in dc2, each once the blocks' 10m cooldowns have run:
// the first two ask "workers" for 1, then for its max, 2; the third goes
// to "more" in the same pass, its reason saying "workers" was asked for its
// max (before: "workers" was sent 2 again, and "more" acted only a pass
// later, or never while the receiver kept answering 200). A new leader
// passes "workers" over alike: the action that asked the max is in the
// replicated state. Once the hold (shape.MaxAskedHold: an hour here) has
// run from when that action took effect, "workers" is asked its max
// again, and passed over anew once that has succeeded; and a reload
// raising its max to 3 makes it the block chosen, asked for 3.
func TestScaleBlockAskedItsMaxLetsTheNextAct(t *testing.T) {
	for _, tc := range []struct {
		name     string
		receiver func(*testing.T) blindReceiver
	}{
		{"webhook", webhookReceiver},
		{"exec", execReceiver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := tc.receiver(t)
			more := &fakeTarget{count: 2}
			h := newHarness(t, actScenario, blindPolicies(t, recv.target, 2), func(c *Config) {
				c.Targets = func(_ *policies.Policy, s *policies.Scale) (target.Target, error) {
					if s.Name == "more" {
						return more, nil
					}
					return target.New(s.Target.Plugin, s.Target.Config, target.Env{Logger: testLogger(t)})
				}
			})
			if len(h.pols[1].Scales) != 2 || h.pols[1].Scales[0].Target.Plugin != tc.name {
				t.Fatalf("dc2's scale blocks %+v; the test needs two, the first a %s", h.pols[1].Scales, tc.name)
			}
			c := h.c
			hot := func() {
				t.Helper()
				if _, err := c.RunOnce(h.ctx, h.now(), h.pols, h.hotForecasts()); err != nil {
					t.Fatal(err)
				}
			}
			want := func(when string, counts []int, moreCalls int) {
				t.Helper()
				if got := recv.counts(); !slices.Equal(got, counts) {
					t.Errorf("%s: %s was sent counts %v; want %v", when, tc.name, got, counts)
				}
				if n := more.calls(); n != moreCalls {
					t.Errorf("%s: %d scale calls to the next block; want %d", when, n, moreCalls)
				}
			}

			hot()
			h.step(11 * time.Minute)
			hot()
			want("asked twice", []int{1, 2}, 0)
			tookEffect := h.now()

			h.step(11 * time.Minute)
			hot()
			want("asked for its max before", []int{1, 2}, 1)
			if said := h.decisionsSaying("", `passed over: scale "workers" was asked for its max (count 2`); len(said) != 1 {
				t.Errorf("decisions saying the first block was passed over as asked for its max: %q; want one", said)
			}

			// A new leader on the same replicated state.
			c = newCoordinatorOn(t, h)
			if err := c.Begin(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			h.step(11 * time.Minute)
			hot()
			want("after a new leader took over", []int{1, 2}, 2)

			// The hold has run: the next need asks the max again.
			hold := shape.MaxAskedHold(10 * time.Minute)
			if hold != time.Hour {
				t.Fatalf("the hold of a 10m cooldown is %s; the test expects an hour", hold)
			}
			h.step(tookEffect.Add(hold).Sub(h.now()) - time.Minute)
			hot()
			want("a minute before the hold ends", []int{1, 2}, 3)
			h.step(time.Minute)
			hot()
			want("once the hold ended", []int{1, 2, 2}, 3)
			h.step(11 * time.Minute)
			hot()
			want("once asked for its max anew", []int{1, 2, 2}, 4)

			// A reload raises its max: the block is below it, chosen again.
			ps, diags := policies.Parse("act.hcl", []byte(blindPolicies(t, recv.target, 3)))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			h.step(11 * time.Minute)
			hot()
			want("after its max was raised", []int{1, 2, 2, 3}, 4)
		})
	}
}
