package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigValidateReadsEveryFile: config validate refuses each file its
// -help names that it cannot read: both ACL token files, Nomad's token
// file, Prometheus's token file and its TLS files (with an https://
// address, the only one they are used with), as the agent would.
func TestConfigValidateReadsEveryFile(t *testing.T) {
	dir := t.TempDir()
	missing := func(name string) string { return filepath.Join(dir, "missing", name) }
	cfg := filepath.Join(dir, "agent.hcl")
	src := `nomad {
  token_file = "` + missing("nomad-token") + `"
}
prometheus {
  address       = "https://127.0.0.1:9090"
  password_file = "` + missing("prom-password") + `"
  username      = "foreshape"
  ca_file       = "` + missing("prom-ca.pem") + `"
}
acl {
  enabled         = true
  token_file      = "` + missing("acl") + `"
  read_token_file = "` + missing("acl-read") + `"
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "config", "validate", cfg)
	if code != ExitInvalid {
		t.Errorf("config validate exits %d, want %d", code, ExitInvalid)
	}
	_, help, helpErr := run(t, "config", "validate", "-help")
	help = strings.Join(strings.Fields(help+helpErr), " ")
	for _, field := range []string{"nomad.token_file", "prometheus.password_file", "prometheus.ca_file", "acl.token_file", "acl.read_token_file"} {
		if !strings.Contains(stderr, "Cannot read "+field) {
			t.Errorf("config validate does not refuse the missing %s:\n%s", field, stderr)
		}
	}
	for _, named := range []string{"acl.read_token_file", "nomad.token_file", "password_file", "the tls, nomad and prometheus certificates, keys and CAs"} {
		if !strings.Contains(help, named) {
			t.Errorf("config validate -help does not name %q", named)
		}
	}
}
