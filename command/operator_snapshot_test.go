package command

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
)

// devAgentAPI starts the dev agent and waits until it leads and its state
// holds series.
func devAgentAPI(t *testing.T) string {
	t.Helper()
	_, out, errb := startDevAgent(t)
	banner := regexp.MustCompile(`HTTP API: (http://\S+)`)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if m := banner.FindStringSubmatch(out.String()); m != nil {
			c := &api.Client{Address: m[1]}
			if st, err := c.Status(t.Context()); err == nil && st.IsLeader {
				if s, err := c.Series(t.Context()); err == nil && len(s) > 0 {
					return m[1]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dev agent leading with series within 60s:\n%s\n%s", out.String(), tailLines(errb.String(), 30))
		}
	}
}

// onlyFile fails unless dir holds exactly the named files: a save leaves
// no temporary file behind.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v; want %v", dir, got, names)
	}
}

// TestSnapshotCommandsAgainstTheDevAgent runs `foreshape agent -dev` and
// saves its state with `operator snapshot save` (which prints what it
// saved, or with -json describes it, and leaves only FILE), describes the file with inspect (a table,
// and -json) without the agent, restores it with restore (which prints
// that the queue is paused by the restore, naming the snapshot's index
// and time, and what it replaced and restored; with -keep-queue, that
// the queue is as the snapshot had it), and refuses to restore, or inspect, a
// copy of it that is truncated, has a byte changed, or a file that is
// not a snapshot, naming the file and why, and restoring nothing.
func TestSnapshotCommandsAgainstTheDevAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	addr := devAgentAPI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")

	code, out, errOut := runCLI(t, "operator", "snapshot", "save", "-address", addr, file)
	if code != ExitOK {
		t.Fatalf("save: exit %d: %s", code, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Saved " + file + ": ", " bytes, the state at index ", "Series  ", "Migration requests", "foreshape version", "Servers"} {
		if !strings.Contains(out, want) {
			t.Errorf("save's output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, ": "+itoa(fi.Size())+" bytes") {
		t.Errorf("save's output does not give the file's size, %d bytes:\n%s", fi.Size(), out)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600 (the state names jobs and nodes)", file, fi.Mode().Perm())
	}
	onlyFiles(t, dir, "backup.snap")

	code, out, errOut = runCLI(t, "operator", "snapshot", "save", "-address", addr, "-json", filepath.Join(dir, "second.snap"))
	var saved api.SnapshotInfo
	if code != ExitOK || json.Unmarshal([]byte(out), &saved) != nil || saved.Index == 0 || saved.SHA256 == "" {
		t.Fatalf("save -json: exit %d: %s\n%s", code, errOut, out)
	}
	if err := os.Remove(filepath.Join(dir, "second.snap")); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = runCLI(t, "operator", "snapshot", "inspect", file)
	if code != ExitOK {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Index", "Term", "State format       1", "State SHA-256", "Series tiers", "1m0s×1440 5m0s×4032 1h0m0s×2160", "Client agents"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect's output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, "operator", "snapshot", "inspect", "-json", file)
	var info api.SnapshotInfo
	if code != ExitOK || json.Unmarshal([]byte(out), &info) != nil || info.Index == 0 || info.State.Series == 0 || len(info.Servers) != 1 || info.Version != 1 {
		t.Fatalf("inspect -json: exit %d: %s\n%s", code, errOut, out)
	}

	code, out, errOut = runCLI(t, "operator", "snapshot", "restore", "-address", addr, file)
	if code != ExitOK {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	paused := "\nQueue: paused by the snapshot restore (the backup of index " + itoa(int64(info.Index)) + " taken " + info.Time.UTC().Format(time.RFC3339) +
		"): review the restored requests ('foreshape queue list'), which may have been done or cancelled since, then resume the queue ('foreshape queue resume').\n\nReplaced:"
	for _, want := range []string{"Restored " + file + ": the state at index " + itoa(int64(info.Index)), "now stands at index", paused, "Replaced:\n  Applied index", "Restored:\n  Applied index", "  Series  "} {
		if !strings.Contains(out, want) {
			t.Errorf("restore's output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, "queue", "list", "-address", addr)
	if code != ExitOK || !strings.HasPrefix(out, "Queue: paused by snapshot restore (the backup of index "+itoa(int64(info.Index))+" taken "+info.Time.UTC().Format(time.RFC3339)+") at ") {
		t.Errorf("queue list after the restore: exit %d: %s%s; want the queue paused", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "operator", "snapshot", "restore", "-address", addr, "-keep-queue", file)
	if code != ExitOK || !strings.Contains(out, ", as the backup had it: kept as the restore asked") {
		t.Errorf("restore -keep-queue: exit %d: %s%s; want the queue as the snapshot had it", code, out, errOut)
	}

	good, _ := os.ReadFile(file)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-6] ^= 0x10 // in the gzip trailer's CRC-32
	for _, tc := range []struct {
		name string
		body []byte
		says string
	}{
		{"cut.snap", good[:len(good)/2], "truncated: it ends after"},
		{"flipped.snap", flipped, "corrupted"},
		{"notes.txt", []byte("not a snapshot\n"), "not a foreshape snapshot: it is not gzip-compressed"},
	} {
		bad := filepath.Join(dir, tc.name)
		if err := os.WriteFile(bad, tc.body, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(t, "operator", "snapshot", "restore", "-address", addr, bad)
		if code != ExitInvalid || !strings.Contains(errOut, "error: "+bad+": ") || !strings.Contains(errOut, tc.says) || !strings.Contains(errOut, "nothing was restored") {
			t.Errorf("restore %s: exit %d: %s; want 1 naming the file, saying %q and that nothing was restored", tc.name, code, errOut, tc.says)
		}
		code, _, errOut = runCLI(t, "operator", "snapshot", "inspect", bad)
		if code != ExitInvalid || !strings.Contains(errOut, "error: "+bad+": ") || !strings.Contains(errOut, tc.says) {
			t.Errorf("inspect %s: exit %d: %s", tc.name, code, errOut)
		}
	}
	code, _, errOut = runCLI(t, "operator", "snapshot", "inspect", filepath.Join(dir, "missing.snap"))
	if code != ExitInvalid || !strings.Contains(errOut, "missing.snap: no such file") {
		t.Errorf("inspect of a missing file: exit %d: %s", code, errOut)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeTestBackup writes a backup of an empty state to path.
func writeTestBackup(t *testing.T, path string) {
	t.Helper()
	f, err := state.NewFSM(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var st, out bytes.Buffer
	if err := f.WriteSnapshot(&st); err != nil {
		t.Fatal(err)
	}
	meta := cluster.BackupMeta{Index: 7, Term: 1, Time: time.Now(), Release: "test", StateFormat: state.SnapshotFormat, Size: int64(st.Len())}
	if err := cluster.WriteBackup(&out, meta, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotSaveLeavesFileOnFailure: a save whose snapshot does not
// arrive whole (the agent's answer cut short, an agent that refuses)
// leaves FILE as it was and no temporary file beside it.
func TestSnapshotSaveLeavesFileOnFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Foreshape-Token") == "bad" {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "permission denied: " + api.DeniedUnknownToken})
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3}) // a gzip stream cut short
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(file, []byte("the previous backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"", "bad"} {
		code, _, errOut := runCLI(t, "operator", "snapshot", "save", "-address", srv.URL, "-token", token, file)
		if code != ExitInvalid || !strings.Contains(errOut, file+" was not written") {
			t.Errorf("token %q: exit %d: %s", token, code, errOut)
		}
		if b, _ := os.ReadFile(file); string(b) != "the previous backup" {
			t.Errorf("token %q: %s now holds %q", token, file, b)
		}
		onlyFiles(t, dir, "backup.snap")
	}
}

// TestSnapshotRestoreThroughAClientAgent: a client agent of an earlier
// release refuses an upload above 4 MiB (413); restore says to point
// -address at a server.
func TestSnapshotRestoreThroughAClientAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "reading the request body: http: request body too large"})
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "backup.snap")
	writeTestBackup(t, file)
	code, _, errOut := runCLI(t, "operator", "snapshot", "restore", "-address", srv.URL, file)
	if code != ExitInvalid || !strings.Contains(errOut, "client agent of an earlier release, which passes on requests of up to 4 MiB: point -address at a server, or upgrade it. Nothing was restored.") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestSnapshotCommandsTakeOneFile: each subcommand takes exactly one
// file.
func TestSnapshotCommandsTakeOneFile(t *testing.T) {
	for _, sub := range []string{"save", "restore", "inspect"} {
		for _, args := range [][]string{{}, {"a", "b"}} {
			code, _, errOut := runCLI(t, append([]string{"operator", "snapshot", sub}, args...)...)
			if code != ExitUsage || !strings.Contains(errOut, "takes one argument, the snapshot's file") {
				t.Errorf("%s %v: exit %d: %s", sub, args, code, errOut)
			}
		}
	}
}

// TestSnapshotRestoreSaysThePauseFailed: when the agent answers that the
// restore could not pause the queue, restore prints the queue as the
// agent describes it (running, as the snapshot had it) and exits 1,
// saying the snapshot is restored but the queue not paused, and why;
// with -json too, after the answer.
func TestSnapshotRestoreSaysThePauseFailed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(api.SnapshotRestore{Restored: api.SnapshotInfo{Version: 1, Index: 7}, Index: 9,
			Queue: api.RestoredQueue{Kept: true, PauseError: "leadership lost", Reason: "running, as the backup had it: the restore could not pause it: leadership lost"}})
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "backup.snap")
	writeTestBackup(t, file)
	const says = "is restored, but the restore could not pause the migration queue, which is as the snapshot had it: leadership lost"
	code, out, errOut := runCLI(t, "operator", "snapshot", "restore", "-address", srv.URL, file)
	if code != ExitInvalid || !strings.Contains(out, "\nQueue: running, as the backup had it: the restore could not pause it: leadership lost.\n") ||
		!strings.Contains(errOut, "error: "+file+" "+says) {
		t.Errorf("exit %d:\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "operator", "snapshot", "restore", "-address", srv.URL, "-json", file)
	var res api.SnapshotRestore
	if code != ExitInvalid || json.Unmarshal([]byte(out), &res) != nil || res.Queue.PauseError != "leadership lost" || !strings.Contains(errOut, says) {
		t.Errorf("-json: exit %d:\n%s\n%s", code, out, errOut)
	}
}
