package command

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestReadmeDevBanner: what `make dev` prints (`foreshape agent -dev` at
// its default speed) is the README's block, line for line, but for the
// HTTP address (the README's is the default, 127.0.0.1:7575; the test's
// a free port), the embedded Nomad's port, which is any free one, and
// the name of the binary in its commands: make dev starts bin/foreshape,
// which they name (invokedAs, TestInvokedAs), where this test's agent
// runs in the test binary and names "foreshape".
func TestReadmeDevBanner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```\n(==> foreshape agent running\n.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md shows no dev agent banner")
	}
	want := strings.ReplaceAll(string(m[1]), "\n      bin/foreshape ", "\n      foreshape ")
	if want == string(m[1]) {
		t.Error("README.md's banner does not name bin/foreshape, as make dev's does")
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"agent", "-dev", "-http-addr", addr}, &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("agent -dev exited %d\n%s", code, tailLines(errb.String(), 30))
		}
	})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "/v1/forecasts | head\n"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no whole banner within 20s:\n%s\n%s", out.String(), tailLines(errb.String(), 30))
		}
	}
	got := strings.ReplaceAll(out.String(), addr, "127.0.0.1:7575")
	nomad := regexp.MustCompile(`(Nomad: http://127\.0\.0\.1:)\d+`)
	got, want = nomad.ReplaceAllString(got, "${1}PORT"), nomad.ReplaceAllString(want, "${1}PORT")
	if got, want = strings.TrimRight(got, "\n"), strings.TrimRight(want, "\n"); got != want {
		t.Errorf("agent -dev prints:\n%s\nREADME.md shows:\n%s", got, want)
	}
}
