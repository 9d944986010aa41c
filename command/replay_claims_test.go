package command

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayRefusesWhatItWouldIgnore: as docs/configuration.md and
// config validate -help say, a replay runs its Raft in-process, so
// bind_addr, data_dir and server.raft_port set at all are refused, by
// config validate -replay and agent -replay alike, naming the setting,
// its line and -replay.
func TestReplayRefusesWhatItWouldIgnore(t *testing.T) {
	dir := recording(t)
	for _, tc := range []struct {
		field, src string
		line       int
	}{
		{"bind_addr", "bind_addr = \"127.0.0.1\"\n", 1},
		{"data_dir", "data_dir = \"/var/lib/foreshape\"\n", 1},
		{"server.raft_port", "server {\n  raft_port = 17576\n}\n", 2},
	} {
		field, src, line := tc.field, tc.src, tc.line
		path := filepath.Join(t.TempDir(), "agent.hcl")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := run(t, "config", "validate", "-replay", dir, path)
		if code != ExitInvalid || !strings.Contains(stderr, "error: Invalid "+field+"\n") ||
			!strings.Contains(stderr, fmt.Sprintf("on %s line %d", path, line)) || !strings.Contains(stderr, "-replay") {
			t.Errorf("%s (line %d): config validate -replay: exit %d\n%s", field, line, code, stderr)
		}
		acode, _, astderr := run(t, "agent", "-replay", dir, "-config", path)
		if acode != code || astderr != stderr {
			t.Errorf("%s: agent -replay: exit %d\n%s\nconfig validate -replay: exit %d\n%s", field, acode, astderr, code, stderr)
		}
	}
}
