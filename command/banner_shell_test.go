package command

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/traces"
)

// TestBannerCommandsPasteIntoAShell: the commands an agent's banner
// offers under "==> Try:" reach foreshape as the banner shows them when
// pasted into a shell, a locality with a "*" included. Printed bare,
// dc1/*/web was a glob: zsh (and bash with failglob) refused the line
// ("no matches found"), and bash passed it on only while nothing in the
// working directory matched it.
func TestBannerCommandsPasteIntoAShell(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent")
	}
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to paste the banner into")
	}
	t.Parallel()
	dir := t.TempDir()
	src, err := fs.ReadFile(traces.FS(), "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv")
	if err != nil {
		t.Fatal(err)
	}
	recorded := strings.Replace(string(src), "timestamp,value", "timestamp,dc1/*/web:cpu", 1)
	if err := os.WriteFile(filepath.Join(dir, "web.csv"), []byte(recorded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.hcl"), []byte(`shaping "web" {
  locality {
    datacenter = "dc1"
    node_class = "web"
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
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "-replay", dir, "-replay-speed", "600", "-http-addr", freeAddr(t)}, &out, &errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("agent -replay exited %d\n%s", code, tailLines(errb.String(), 30))
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "/v1/forecasts | head\n"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no whole banner within 20s:\n%s\n%s", out.String(), tailLines(errb.String(), 30))
		}
	}
	_, try, _ := strings.Cut(out.String(), "==> Try:\n")
	var show string
	for _, line := range strings.Split(try, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "foreshape forecast show ") {
			show = line
		}
	}
	if show == "" {
		t.Fatalf("the banner offers no forecast show:\n%s", out.String())
	}
	// The line as a shell that refuses a glob matching nothing (zsh's
	// default) runs it, foreshape replaced by a function that prints
	// the words it is given; then as bash runs it by default, in a
	// directory where the glob matches a path.
	for _, opts := range [][]string{{"-O", "failglob"}, nil} {
		if opts == nil {
			if err := os.MkdirAll(filepath.Join(dir, "dc1", "a", "web"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(sh, append(append([]string{"--norc", "--noprofile"}, opts...), "-c", `foreshape() { printf '%s\n' "$@"; }; `+show)...)
		cmd.Dir = dir
		got, err := cmd.CombinedOutput()
		words := strings.Split(strings.TrimSpace(string(got)), "\n")
		if err != nil || words[len(words)-1] != "dc1/*/web" {
			t.Errorf("bash %v ran %q: %v; its words:\n%s\nwant the last dc1/*/web", opts, show, err, got)
		}
	}
}

// TestInvokedAs: the banner's commands name foreshape as the operator can
// run it: by the path the agent was started by (make dev's bin/foreshape,
// where "foreshape" is no command in a fresh checkout), or "foreshape"
// when that name on the PATH runs the same binary.
func TestInvokedAs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "foreshape")
	other := filepath.Join(dir, "usr", "foreshape")
	spaced := filepath.Join(dir, "my bin", "foreshape")
	for _, p := range []string{bin, other, spaced} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	found := func(p string) func(string) (string, error) {
		return func(string) (string, error) { return p, nil }
	}
	for _, tc := range []struct {
		arg0     string
		lookPath func(string) (string, error)
		want     string
	}{
		{bin, notFound, bin},
		{bin, found(other), bin},
		{bin, found(bin), "foreshape"},
		{bin, found(link), "foreshape"},
		{spaced, notFound, "'" + spaced + "'"},
		{"foreshape", notFound, "foreshape"},
		{filepath.Join(dir, "command.test"), notFound, "foreshape"},
	} {
		if got := invokedAs(tc.arg0, tc.lookPath); got != tc.want {
			t.Errorf("invokedAs(%q): %q, want %q", tc.arg0, got, tc.want)
		}
	}
}
