package command

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/traces"
)

// TestAgentReplaysRecordedSeries runs `foreshape agent -replay DIR` on a
// recorded NAB trace and waits for its forecast.
func TestAgentReplaysRecordedSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent")
	}
	t.Parallel()
	dir := recording(t)
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "-replay", dir, "-replay-speed", "600", "-http-addr", httpAddr}, &out, &errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("agent -replay exited %d\n%s", code, errb.String())
		}
	}()
	client := &api.Client{Address: "http://" + httpAddr}
	var fc api.Forecast
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fcs, err := client.Forecast(ctx, "dc1/web", "cpu")
		if err == nil && len(fcs) == 1 && len(fcs[0].Bands) > 0 {
			fc = fcs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dc1/web cpu forecast within 30s (last error %v)\n%s\n%s", err, out.String(), tailLines(errb.String(), 30))
		}
	}
	if want := "web.csv: 1 row left out, their time or a value missing or invalid (the first at line 3: dc1/web:cpu)"; !strings.Contains(errb.String(), want) {
		t.Errorf("the agent does not say %q:\n%s", want, tailLines(errb.String(), 30))
	}
	if !regexp.MustCompile(`Replay: 1 recorded series from \S+ at 600x`).MatchString(out.String()) {
		t.Errorf("the banner does not describe the replay:\n%s", out.String())
	}
	// The forecast starts a day into the recording (the policy's history)
	// and was fitted on the recorded points.
	if first := time.Date(2014, 2, 15, 14, 30, 0, 0, time.UTC); fc.Origin.Before(first) || len(fc.Times) != 12 {
		t.Errorf("forecast origin %v (want after %v), %d steps", fc.Origin, first, len(fc.Times))
	}
	st, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Sources, []string{"replay"}) {
		t.Errorf("sources = %v, want only the replay", st.Sources)
	}
	// A replay acts on nothing: its queue cannot be paused, and the
	// dashboard's Queue page says it runs no act half (it said "The
	// queue is running" and offered to pause it).
	if _, err := client.Pause(ctx, true); err == nil || !strings.Contains(err.Error(), "talks to no Nomad (replay)") || !strings.Contains(err.Error(), "503") {
		t.Errorf("pausing a replay's queue: %v; want refused, naming the replay", err)
	}
	resp, err := http.Get("http://" + httpAddr + "/ui/queue")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "This agent does not run the act half") || strings.Contains(string(page), "Pause the queue") {
		t.Errorf("a replay's Queue page (%d) does not say it runs no act half, or offers a pause:\n%s", resp.StatusCode, page)
	}
}

func TestAgentReplayUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agent", "-replay", "x", "-dev"}, ExitUsage, "choose one"},
		{[]string{"agent", "-replay", "x", "-replay-speed", "0"}, ExitUsage, "-replay-speed must be positive"},
		{[]string{"agent", "-replay", t.TempDir()}, ExitInvalid, "no policies"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestAgentFlagsThatNeedAnother: a flag that acts only with another one
// is a usage error without it, instead of being accepted and ignored
// (-sim-clock with -replay would even have replaced the recording's
// clock with a simulator's).
func TestAgentFlagsThatNeedAnother(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", "x.hcl", "-dev-sim=false"}, "-dev-sim only applies with -dev"},
		{[]string{"-config", "x.hcl", "-sim-speed", "60"}, "-sim-speed is the speed of -dev's embedded simulated cluster"},
		{[]string{"-dev", "-dev-sim=false", "-sim-speed", "60"}, "it needs -dev (without -dev-sim=false)"},
		{[]string{"-replay", "x", "-sim-speed", "60"}, "-sim-speed is the speed"},
		{[]string{"-dev", "-sim-clock"}, "-dev's embedded simulated cluster gives it already"},
		{[]string{"-replay", "x", "-sim-clock"}, "a replay's data time comes from its recording"},
		{[]string{"-config", "x.hcl", "-replay-speed", "600"}, "-replay-speed only applies with -replay DIR"},
		{[]string{"-dev", "-replay-speed", "600"}, "-replay-speed only applies with -replay DIR"},
	} {
		code, stdout, stderr := run(t, append([]string{"agent"}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("agent %v: exit %d, stderr:\n%s\nwant %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
}

// recording is a directory a replay runs on: a recorded NAB trace as
// dc1/web's CPU, with one value the replay cannot read (on line 3), and a
// policy for dc1/web.
func recording(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := fs.ReadFile(traces.FS(), "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv")
	if err != nil {
		t.Fatal(err)
	}
	recorded := strings.Replace(string(src), "timestamp,value", "timestamp,dc1/web:cpu", 1)
	lines := strings.Split(recorded, "\n")
	at, _, _ := strings.Cut(lines[2], ",")
	lines[2] = at + ",n/a"
	recorded = strings.Join(lines, "\n")
	if err := os.WriteFile(filepath.Join(dir, "web.csv"), []byte(recorded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.hcl"), []byte(`shaping "web" {
  locality {
    datacenter = "dc1"
    node_pool  = "web"
  }
  forecast {
    step    = "5m"
    horizon = "1h"
    history = "1d"
  }
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConfigValidateReplay: config validate -replay refuses what agent
// -replay refuses, with the same message, and passes what it runs.
func TestConfigValidateReplay(t *testing.T) {
	dir := recording(t)
	cfgDir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(cfgDir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clean := write("clean.hcl", "log_level = \"warn\"\n")
	queue := write("queue.hcl", "queue {\n  max_parallel = 2\n}\n")
	empty := t.TempDir()
	if code, stdout, stderr := run(t, "config", "validate", "-replay", dir, clean); code != ExitOK || !strings.Contains(stdout, "the configuration is valid") ||
		!strings.Contains(stderr, "Rows left out of the recording") {
		t.Errorf("a replay's clean configuration: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		name, dir, cfg, want string
	}{
		{"queue settings", dir, queue, "queue.max_parallel is set but a replay (-replay) reads recorded series and acts on nothing"},
		{"no policies", empty, clean, "no policies"},
	} {
		code, _, stderr := run(t, "config", "validate", "-replay", tc.dir, tc.cfg)
		if code != ExitInvalid || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: config validate -replay: exit %d\n%s\nwant %d and %q", tc.name, code, stderr, ExitInvalid, tc.want)
		}
		acode, _, astderr := run(t, "agent", "-replay", tc.dir, "-config", tc.cfg)
		if acode != code || astderr != stderr {
			t.Errorf("%s: agent -replay: exit %d\n%s\nconfig validate -replay: exit %d\n%s", tc.name, acode, astderr, code, stderr)
		}
	}
	if code, _, stderr := run(t, "config", "validate", "-replay", dir, "-dev", clean); code != ExitUsage || !strings.Contains(stderr, "choose one") {
		t.Errorf("-replay with -dev: exit %d\n%s", code, stderr)
	}
}

// TestReplayValidateAndAgentAgree: config validate -replay DIR accepts
// what agent -replay DIR runs, and refuses what it refuses with the same
// diagnostics, DIR's policies included: they are checked as a set against
// the configuration (two policies of one locality), and a policies.dir set
// beside them, which the replay would not read, is refused.
func TestReplayValidateAndAgentAgree(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	dir := recording(t)
	twice := recording(t)
	src, err := os.ReadFile(filepath.Join(twice, "web.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, "", filepath.Join(twice, "web2.hcl"), strings.Replace(string(src), `shaping "web"`, `shaping "web2"`, 1))
	cfgDir := t.TempDir()
	polDir := filepath.Join(cfgDir, "policies")
	copyFile(t, filepath.Join(dir, "web.hcl"), filepath.Join(polDir, "web.hcl"), "")
	clean := filepath.Join(cfgDir, "clean.hcl")
	copyFile(t, "", clean, "log_level = \"warn\"\n")
	withDir := filepath.Join(cfgDir, "with-dir.hcl")
	copyFile(t, "", withDir, fmt.Sprintf("log_level = \"warn\"\npolicies {\n  dir = %q\n}\n", polDir))
	// A recording without policies runs policies.dir's.
	bare := t.TempDir()
	copyFile(t, filepath.Join(dir, "web.csv"), filepath.Join(bare, "web.csv"), "")

	for _, tc := range []struct {
		name, dir, cfg string
		want           string // "" when both accept
	}{
		{"clean", dir, clean, ""},
		{"policies of policies.dir", bare, withDir, ""},
		{"two policies of one locality", twice, clean, "Two policies shape one locality"},
		{"policies.dir beside the recording's policies", dir, withDir, "with-dir.hcl:3,9-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			code, _, stderr := run(t, "config", "validate", "-replay", tc.dir, "-http-addr", addr, tc.cfg)
			if tc.want == "" {
				if code != ExitOK {
					t.Fatalf("config validate -replay refuses it: exit %d\n%s", code, stderr)
				}
				logs, stop := startAgentCommand(t, "-replay", tc.dir, "-config", tc.cfg, "-http-addr", addr)
				eventuallyT(t, 30*time.Second, "the agent's API", logs, func() bool {
					_, err := (&api.Client{Address: "http://" + addr}).Status(context.Background())
					return err == nil
				})
				if c := stop(); c != ExitOK {
					t.Errorf("agent -replay exited %d\n%s", c, tailLines(logs.String(), 20))
				}
				return
			}
			if code != ExitInvalid || !strings.Contains(stderr, tc.want) {
				t.Errorf("config validate -replay: exit %d\n%s\nwant %d and %q", code, stderr, ExitInvalid, tc.want)
			}
			acode, aerr := runAgent(t, "-replay", tc.dir, "-config", tc.cfg, "-http-addr", addr)
			if acode != code || aerr != stderr {
				t.Errorf("agent -replay: exit %d\n%s\nconfig validate -replay: exit %d\n%s", acode, aerr, code, stderr)
			}
		})
	}
}
