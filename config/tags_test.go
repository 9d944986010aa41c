package config_test

import (
	"strings"
	"testing"
)

// TestConsulTagsRefuseTheRoleTags: the agent tags its Consul service
// with its role (leader, follower or client) and keeps that tag current;
// consul.tags naming a role would put it on every agent whatever its role
// (a follower listed as leader), so it is refused at the element that
// names it.
func TestConsulTagsRefuseTheRoleTags(t *testing.T) {
	for _, tag := range []string{"leader", "follower", "client", "Leader"} {
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
