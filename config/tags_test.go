package config_test

import (
	"strings"
	"testing"
)

// TestConsulTagsRefuseTheRoleTags: the agent tags its Consul service
// with its role (leader, follower or client) and keeps that tag current,
// and its NAME-metrics service with its kind (server or client);
// consul.tags naming a role would put it on every agent whatever its role
// (a follower listed as leader), so it is refused at the element that
// names it.
func TestConsulTagsRefuseTheRoleTags(t *testing.T) {
	for _, tag := range []string{"leader", "follower", "client", "server", "Leader"} {
		_, diags := loadSrc(t, "consul {\n  enabled = true\n  tags    = [\"dc1\",\n    \""+tag+"\"]\n}\n")
		if !diags.HasErrors() {
			t.Errorf("consul.tags with %q accepted", tag)
			continue
		}
		d := diags[0]
		if d.Summary != "Invalid consul.tags[1]" || d.Subject == nil || d.Subject.Start.Line != 4 || !strings.Contains(d.Detail, "role") {
			t.Errorf("consul.tags with %q: %s; want Invalid consul.tags[1] at line 4, saying it is a role tag", tag, diags.Error())
		}
	}
	if _, diags := loadSrc(t, "consul {\n  enabled = true\n  tags    = [\"dc1\", \"leaders-pool\"]\n}\n"); diags.HasErrors() {
		t.Errorf("other tags: %s", diags.Error())
	}
}

// TestListsRefuseRepeats: a value listed twice in consul.tags or
// server.retry_join is refused at its second place, naming the first.
func TestListsRefuseRepeats(t *testing.T) {
	for _, tc := range []struct{ src, summary string }{
		{"consul {\n  enabled = true\n  tags    = [\"dc1\",\n    \"dc1\"]\n}\n", "Invalid consul.tags[1]"},
		{"server {\n  bootstrap_expect = 3\n  retry_join       = [\"10.0.0.2\",\n    \"10.0.0.2\"]\n}\n", "Invalid server.retry_join[1]"},
	} {
		_, diags := loadSrc(t, tc.src)
		if !diags.HasErrors() {
			t.Errorf("%q accepted", tc.src)
			continue
		}
		if d := diags[0]; d.Summary != tc.summary || d.Subject == nil || d.Subject.Start.Line != 4 || !strings.Contains(d.Detail, "is listed already, as") {
			t.Errorf("%s; want %s at line 4, naming where it is listed first", diags.Error(), tc.summary)
		}
	}
}
