package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraceDataErrorsNameTheFlag: forecast eval and forecast anomalies
// refuse a -data that is missing or not a directory with an error that
// names -data and the path given, as sim run and sim serve do. They said
// "read traces: stat ../shared/data/nab: no such file or directory",
// which names neither the flag nor the setting to change (README.md's
// forecast eval example, run from a checkout without ../shared/data).
func TestTraceDataErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	file := filepath.Join(dir, "trace.csv")
	if err := os.WriteFile(file, []byte("timestamp,value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"forecast", "eval", "-data", missing, "-horizon", "12"}, "error: -data " + missing + ": no such directory\n"},
		{[]string{"forecast", "eval", "-data", dir + "," + missing, "-horizon", "12"}, "error: -data " + missing + ": no such directory\n"},
		{[]string{"forecast", "eval", "-data", file, "-horizon", "12"}, "error: -data " + file + " is not a directory\n"},
		{[]string{"forecast", "anomalies", "-data", missing}, "error: -data " + missing + ": no such directory\n"},
		{[]string{"forecast", "anomalies", "-data", file}, "error: -data " + file + " is not a directory\n"},
	} {
		code, _, errOut := runForecastCLI(t, tc.args...)
		if code != ExitInvalid || errOut != tc.want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), code, errOut, ExitInvalid, tc.want)
		}
	}
}
