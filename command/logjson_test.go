package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogJSONSetting: log_json = true makes every line the agent logs a
// JSON object with hclog's @level and @message (example.hcl: "JSON log
// lines"), from its first line to "agent stopped cleanly".
func TestLogJSONSetting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev agent")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(path, []byte("log_json = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, stop := startAgentCommand(t, "-dev", "-config", path, "-sim-speed", "600", "-http-addr", freeAddr(t))
	eventuallyT(t, 30*time.Second, "the dev agent to lead", logs, func() bool {
		return strings.Contains(logs.String(), "leading: starting the collect and forecast cycle")
	})
	if code := stop(); code != ExitOK {
		t.Fatalf("the agent exited %d:\n%s", code, tailLines(logs.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["@level"] == nil || rec["@message"] == nil {
			t.Errorf("with log_json = true the agent logged a line that is no JSON log record: %q", line)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, `"@message":"agent stopped cleanly"`) {
		t.Errorf("the last line is %q; want the clean stop's record", last)
	}
}
