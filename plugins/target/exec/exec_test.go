package exec

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/targettest"
)

// script is a scaling command: it keeps a count in a file, stores every
// payload it reads, and behaves as the behaviour file says.
const script = `#!/bin/sh
dir=$(dirname "$0")
case "$(cat "$dir/behaviour")" in
refuse) echo "the group is at its maximum" >&2; exit 3 ;;
fail) echo "cloud API unreachable" >&2; exit 1 ;;
hang) sleep 60 & wait; exit 0 ;;
esac
n=$(ls "$dir" | grep -c '^payload-')
cat > "$dir/payload-$(printf %04d "$n").json"
echo "$FORESHAPE_COUNT" > "$dir/count"
env > "$dir/env"
echo "scaled to $FORESHAPE_COUNT"
`

type system struct{ dir string }

func newSystem(t *testing.T, initial int) *system {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"scale.sh": script, "behaviour": "accept", "count": strconv.Itoa(initial) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &system{dir: dir}
}

func (s *system) Count(t *testing.T) int {
	b, err := os.ReadFile(filepath.Join(s.dir, "count"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *system) Received(t *testing.T) []target.Payload {
	files, _ := filepath.Glob(filepath.Join(s.dir, "payload-*.json"))
	sort.Strings(files)
	var out []target.Payload
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p target.Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v: %s", f, err, b)
		}
		out = append(out, p)
	}
	return out
}

func (s *system) Behave(t *testing.T, b targettest.Behaviour) {
	if err := os.WriteFile(filepath.Join(s.dir, "behaviour"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTarget(t *testing.T, s *system, timeout time.Duration, env map[string]string) target.Target {
	tg, err := New(&Config{Command: []string{"/bin/sh", filepath.Join(s.dir, "scale.sh")}, Timeout: timeout, Env: env}, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

type fixture struct{}

func (fixture) CarriesAmount() bool { return true }

func (fixture) New(t *testing.T, initial int) (target.Target, targettest.System) {
	s := newSystem(t, initial)
	return newTarget(t, s, 30*time.Second, nil), s
}

func TestConformance(t *testing.T) {
	targettest.Run(t, fixture{})
}

// The command sees the action in FORESHAPE_* variables and the policy's
// env, and none of the agent's own environment beyond PATH and the like.
func TestEnvironment(t *testing.T) {
	t.Setenv("NOMAD_TOKEN", "agent-secret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "agent-secret")
	// What the command inherits of the agent's environment, and only that.
	inherit := map[string]string{"HOME": "/home/fs", "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC", "TMPDIR": t.TempDir(),
		"USER": "foreshape"}
	for k, v := range inherit {
		t.Setenv(k, v)
	}
	s := newSystem(t, 1)
	tg := newTarget(t, s, 5*time.Second, map[string]string{"ONPREM_SITE": "lab"})
	a := target.Action{ID: "act-4", Policy: "batch", Scale: "onprem", Locality: "*/batch", Direction: target.Up,
		Amount: 2, Count: 3, Min: 0, Max: 8, Reason: "reservation for mr-3 does not fit"}
	if _, err := tg.Scale(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, want := range []string{"FORESHAPE_REQUEST_ID=act-4", "FORESHAPE_POLICY=batch", "FORESHAPE_SCALE=onprem",
		"FORESHAPE_LOCALITY=*/batch", "FORESHAPE_DIRECTION=up", "FORESHAPE_AMOUNT=2", "FORESHAPE_COUNT=3",
		"FORESHAPE_MIN=0", "FORESHAPE_MAX=8", "FORESHAPE_REASON=reservation for mr-3 does not fit", "ONPREM_SITE=lab", "PATH=",
		"HOME=/home/fs", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "TMPDIR=" + inherit["TMPDIR"], "USER=foreshape"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "agent-secret") {
		t.Errorf("the agent's environment leaked into the command:\n%s", env)
	}
}

func TestFailuresSayWhy(t *testing.T) {
	// A refusal and a failure get a timeout a loaded machine cannot reach;
	// the hang is killed at its short one.
	for _, tc := range []struct {
		b       targettest.Behaviour
		timeout time.Duration
		want    string
	}{
		{targettest.Refuse, 30 * time.Second, "declined (exit 3): the group is at its maximum"},
		{targettest.Fail, 30 * time.Second, "exit status 1: cloud API unreachable"},
		{targettest.Hang, 200 * time.Millisecond, "killed after the 200ms timeout"},
	} {
		s := newSystem(t, 1)
		s.Behave(t, tc.b)
		_, err := newTarget(t, s, tc.timeout, nil).Scale(context.Background(),
			target.Action{ID: "x", Direction: target.Up, Amount: 1, Count: 2})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.b, err, tc.want)
		}
	}
	tg, err := New(&Config{Command: []string{filepath.Join(t.TempDir(), "missing")}, Timeout: time.Second}, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Scale(context.Background(), target.Action{ID: "x", Direction: target.Up, Amount: 1, Count: 2})
	if !errors.Is(err, target.ErrFailed) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing program: err = %v, want a failure naming it", err)
	}
}

// TestErrorQuotesTheOutput: the command reads the payload as one line on
// standard input; a failure's error quotes the last 4 KiB of standard
// error, or of standard output when standard error is empty.
func TestErrorQuotesTheOutput(t *testing.T) {
	long := strings.Repeat("x", 6000)
	for _, tc := range []struct {
		name, script string
		want         []string
		notWant      string
	}{
		{"stdin is the payload and a newline",
			`if read -r line; then echo "read: $line" >&2; else echo "no newline" >&2; fi; exit 3`,
			[]string{`declined (exit 3): read: {"request_id":"act-5",`}, "no newline"},
		{"stderr first", `echo "to stdout"; echo "to stderr" >&2; exit 1`, []string{"exit status 1: to stderr"}, "to stdout"},
		{"stdout when stderr is empty", `echo "only stdout"; exit 1`, []string{"exit status 1: only stdout"}, ""},
		{"the last 4 KiB", `echo "START"; printf '` + long + `'; echo " END"; exit 1`, []string{" END"}, "START"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := New(&Config{Command: []string{"/bin/sh", "-c", tc.script}, Timeout: 30 * time.Second}, target.Env{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tg.Scale(context.Background(), target.Action{ID: "act-5", Direction: target.Up, Amount: 1, Count: 2})
			if err == nil {
				t.Fatal("the command failed and Scale did not")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %.300q lacks %q", msg, w)
				}
			}
			if tc.notWant != "" && strings.Contains(msg, tc.notWant) {
				t.Errorf("error %.300q holds %q", msg, tc.notWant)
			}
			if n := strings.Count(msg, "x"); n > 4<<10 {
				t.Errorf("error quotes %d bytes of output, more than 4 KiB", n)
			}
		})
	}
}
