package command

import (
	"runtime/debug"
	"testing"
)

// TestVersionOf: the version names what the binary was built from, or
// says it is unknown, in each way a binary is built.
func TestVersionOf(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/foreshape/foreshape", Version: "(devel)"}}
		for i := 0; i+1 < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	const rev = "5d3fd3e0123456789abcdef0123456789abcdef0"
	for _, tc := range []struct {
		name, stamped string
		info          *debug.BuildInfo
		want          string
	}{
		{"make build", "5d3fd3e01234", vcs(), "1.2.3 (5d3fd3e01234)"},
		{"make build, uncommitted changes", "5d3fd3e01234-dirty", vcs("vcs.revision", rev), "1.2.3 (5d3fd3e01234-dirty)"},
		{"go build in a checkout", "", vcs("vcs", "git", "vcs.revision", rev, "vcs.modified", "false"), "1.2.3 (5d3fd3e01234)"},
		{"go build in a changed checkout", "", vcs("vcs.revision", rev, "vcs.modified", "true"), "1.2.3 (5d3fd3e01234-dirty)"},
		{"go install from the module cache", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202162200-5d3fd3e01234"}},
			"1.2.3 (module v0.0.0-20261202162200-5d3fd3e01234)"},
		{"go build -buildvcs=false", "", vcs("-buildvcs", "false"), "1.2.3 (revision unknown)"},
		{"no build information", "", nil, "1.2.3 (revision unknown)"},
	} {
		if got := versionOf("1.2.3", tc.stamped, tc.info); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
