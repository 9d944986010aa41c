package agent

import (
	"slices"
	"testing"

	"github.com/foreshape/foreshape/config"
)

// TestRetryJoinPortDefaultsToRaftPort: a server.retry_join address without
// a port takes this server's raft_port (docs/clustering.md, Joining), IPv6
// addresses alike, bracketed or not; one with a port keeps it.
func TestRetryJoinPortDefaultsToRaftPort(t *testing.T) {
	cfg := config.Default()
	cfg.Server.RaftPort = 7600
	cfg.Server.RetryJoin = []string{"10.0.0.12", "10.0.0.13:7576", "fs-3.example", "[fd00::14]", "fd00::15", "[fd00::16]:7577"}
	static, lookup, err := joinTargets(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.12:7600", "10.0.0.13:7576", "fs-3.example:7600", "[fd00::14]:7600", "[fd00::15]:7600", "[fd00::16]:7577"}
	if !slices.Equal(static, want) || lookup != nil {
		t.Errorf("joinTargets(%q) = %q, lookup %v; want %q and no lookup", cfg.Server.RetryJoin, static, lookup != nil, want)
	}
}
