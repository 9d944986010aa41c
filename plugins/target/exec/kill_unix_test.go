//go:build unix

package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/target"
)

// TestTimeoutKillsTheProcessGroup: at the timeout the command's children
// are killed with it (docs/targets.md: "the command and its process group
// are killed after it"), so a script's sleep does not outlive the action.
func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tg, err := New(&Config{
		Command: []string{"/bin/sh", "-c", `sleep 30 & echo $! > "$0"; wait`, pidFile},
		Timeout: 500 * time.Millisecond,
	}, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Scale(context.Background(), target.Action{ID: "x", Direction: target.Up, Amount: 1, Count: 2})
	if err == nil || !strings.Contains(err.Error(), "killed after the 500ms timeout") {
		t.Fatalf("err = %v, want the timeout", err)
	}
	waitChildGone(t, pidFile, "its timeout")
}

// zombie reports whether a process has exited and waits to be reaped
// (Linux's /proc; elsewhere it reports false).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// TestCancelKillsTheProcessGroup: the caller's context ending (a leader
// losing its leadership) kills the running command and its children as
// the timeout does; the action ends timed out, saying it was stopped.
func TestCancelKillsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tg, err := New(&Config{
		Command: []string{"/bin/sh", "-c", `sleep 30 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"; wait`, pidFile},
		Timeout: time.Minute,
	}, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(pidFile); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err = tg.Scale(ctx, target.Action{ID: "x", Direction: target.Up, Amount: 1, Count: 2})
	if !errors.Is(err, target.ErrTimeout) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped: context canceled") {
		t.Fatalf("err = %v, want a timeout saying the command was stopped", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Scale returned %s after the cancel was asked for", d)
	}
	waitChildGone(t, pidFile, "the cancel")
}

// waitChildGone waits up to 5 s for the process whose ID the command wrote
// to pidFile to end, failing the test (after killing it) when it outlives
// what (its timeout, the cancel). The killed child is the test process's
// grandchild, reaped by init once its parent died; where nothing reaps it,
// it stays a zombie.
func waitChildGone(t *testing.T, pidFile, what string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d outlived %s", pid, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
