package command

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
)

// simBanner waits until sim serve has printed its whole banner (the clock
// line is its last: the lines are written one at a time, so the address
// shows before the rest) and returns the address it serves on.
func simBanner(t *testing.T, out, errb *syncbuf.Buffer, done <-chan int) string {
	t.Helper()
	re := regexp.MustCompile(`serving Nomad API on (http://\S+)\n(?s:.*)\n  clock: [^\n]*\n`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("sim serve exited %d before its banner; stdout %q stderr %q", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner within a minute; stdout %q stderr %q", out.String(), errb.String())
		}
	}
}

func TestSimServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "serve", "-addr", "127.0.0.1:0", "-speed", "0", "-log-level", "error"}, &out, &errb)
	}()
	base := simBanner(t, &out, &errb, done)
	if s := out.String(); !strings.Contains(s, "scenario: default") || !strings.Contains(s, "clock:    manual") {
		t.Errorf("banner = %q", s)
	}
	resp, err := http.Get(base + "/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&nodes)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(nodes) != 24 {
		t.Errorf("GET /v1/nodes: %d, %d nodes", resp.StatusCode, len(nodes))
	}
	resp, err = http.Post(base+"/v1/sim/step?d=5m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("manual step: %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK || !strings.Contains(out.String(), "stopped") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("sim serve did not stop within a minute of cancellation")
	}
}

// TestSimServeTruthWindow: sim serve keeps the per-minute ground truth of
// -truth-window of virtual time, as its help says.
func TestSimServeTruthWindow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "serve", "-addr", "127.0.0.1:0", "-speed", "0", "-log-level", "error", "-truth-window", "2h"}, &out, &errb)
	}()
	base := simBanner(t, &out, &errb, done)
	resp, err := http.Post(base+"/v1/sim/step?d=5h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/v1/sim/truth")
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ NodeMinutes []struct{ Minute time.Time } }
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || len(tr.NodeMinutes) == 0 {
		t.Fatalf("GET /v1/sim/truth: %v, %d node minutes", err, len(tr.NodeMinutes))
	}
	first, last := tr.NodeMinutes[0].Minute, tr.NodeMinutes[len(tr.NodeMinutes)-1].Minute
	if span := last.Sub(first); span > 2*time.Hour || span < 2*time.Hour-2*time.Minute {
		t.Errorf("node minutes from %v to %v (%s) after 5 virtual hours; want the last 2h", first, last, span)
	}
	cancel()
	<-done
}

func TestSimServeErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("name = \"x\"\ntick = \"fast\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"sim", "serve", "-bogus"}, ExitUsage, "bogus"},
		{"negative speed", []string{"sim", "serve", "-speed", "-1"}, ExitUsage, "speed"},
		{"negative truth window", []string{"sim", "serve", "-truth-window", "-1h"}, ExitUsage, "-truth-window must not be negative"},
		{"bad log level", []string{"sim", "serve", "-log-level", "loud"}, ExitUsage, "log-level"},
		{"argument", []string{"sim", "serve", "extra"}, ExitUsage, "no arguments"},
		{"missing scenario", []string{"sim", "serve", "-scenario", filepath.Join(t.TempDir(), "none.hcl")}, ExitInvalid, "none.hcl"},
		{"invalid scenario", []string{"sim", "serve", "-scenario", bad}, ExitInvalid, "bad.hcl"},
		{"data not a directory", []string{"sim", "serve", "-data", bad}, ExitInvalid, "not a directory"},
		// A name that is neither a file nor a bundled scenario (a typo)
		// lists the bundled ones.
		{"unknown scenario name", []string{"sim", "serve", "-scenario", "surge-wav"}, ExitInvalid,
			`"surge-wav" is neither a scenario file nor a bundled scenario (bursty, crossings, default, large, maintenance, maintenance-peak, shared-data, surge-wave)`},
		{"unknown scenario name, sim run", []string{"sim", "run", "-scenario", "surge-wav"}, ExitInvalid, "neither a scenario file nor a bundled scenario"},
		// shared-data is bundled, its traces are not: it asks for -data.
		{"shared-data without its traces, sim run", []string{"sim", "run", "-scenario", "shared-data", "-controllers", "none"}, ExitInvalid,
			"The scenario names a trace file that is not bundled: point -data at a directory\nthat holds it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncbuf.Buffer
			code := Run(context.Background(), tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errb.String(), tc.want)
			}
		})
	}
}

func TestSimServeRunningClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "serve", "-addr", "127.0.0.1:0", "-speed", "600", "-seed", "9", "-log-level", "error"}, &out, &errb)
	}()
	base := simBanner(t, &out, &errb, done)
	if !strings.Contains(out.String(), "600x wall time") || !strings.Contains(out.String(), "seed 9") {
		t.Errorf("banner = %q", out.String())
	}
	var clock struct{ Running bool }
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !clock.Running; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(base + "/v1/sim/clock")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&clock)
		resp.Body.Close()
	}
	if !clock.Running {
		t.Error("the clock is not tied to wall time")
	}
	resp, err := http.Post(base+"/v1/sim/step?d=1m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("manual step with a running clock: %d, want 409", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("sim serve did not stop within a minute of cancellation")
	}
}

func TestSimServeBundledScenarioByName(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "serve", "-addr", "127.0.0.1:0", "-speed", "0", "-scenario", "maintenance", "-log-level", "error"}, &out, &errb)
	}()
	simBanner(t, &out, &errb, done)
	if !strings.Contains(out.String(), "scenario: maintenance") {
		t.Errorf("banner = %q, stderr %q", out.String(), errb.String())
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d", code)
	}
}
