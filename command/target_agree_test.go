package command

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/config"
)

// TestPolicyValidateAndAgentRefuseTheSameTargets: a scale target block
// that `policy validate` refuses, the agent refuses at start with the same
// diagnostics (file:line and the setting's name): an unknown plugin, a
// missing command or url, a url that is not absolute http(s), a header
// name HTTP does not allow, a body template naming a field the payload
// lacks, a timeout past its bound, a nomad-job without its group. An exec
// program that does not exist is not looked up (policy validate may run
// where it is not installed): both accept it, and each action fails
// naming it (exec's TestProgramThatCannotRun).
func TestPolicyValidateAndAgentRefuseTheSameTargets(t *testing.T) {
	for _, name := range config.EnvVarNames() {
		t.Setenv(name, "")
	}
	for _, tc := range []struct {
		name, target string
		want         string // besides web.hcl:LINE
	}{
		{"unknown plugin", `target "kubernetes" {
      deployment = "web"
    }`, `Unknown scale.more.target plugin "kubernetes"`},
		{"exec without command", `target "exec" {
      timeout = "1m"
    }`, "Missing scale.more.target.exec.command"},
		{"exec timeout", `target "exec" {
      command = ["/usr/local/bin/scale"]
      timeout = "1h"
    }`, "Invalid scale.more.target.exec.timeout"},
		{"webhook without url", `target "webhook" {
      method = "POST"
    }`, "Missing scale.more.target.webhook.url"},
		{"webhook relative url", `target "webhook" {
      url = "/scale"
    }`, "Invalid scale.more.target.webhook.url"},
		{"webhook ftp url", `target "webhook" {
      url = "ftp://scaler.example.com/scale"
    }`, "Invalid scale.more.target.webhook.url"},
		{"webhook header name", `target "webhook" {
      url     = "https://scaler.example.com/scale"
      headers = { "X Api Key" = "k" }
    }`, `"X Api Key" is not a valid HTTP header name`},
		{"webhook template field", `target "webhook" {
      url  = "https://scaler.example.com/scale"
      body = "{\"n\": {{ .Cuont }}}"
    }`, "Invalid scale.more.target.webhook.body"},
		{"nomad-job without group", `target "nomad-job" {
      job = "web"
    }`, "Missing scale.more.target.nomad-job.group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgDir, polDir := filepath.Join(dir, "config"), filepath.Join(dir, "policies")
			copyFile(t, "", filepath.Join(polDir, "web.hcl"), "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n"+
				"  scale \"more\" {\n    min = 1\n    max = 4\n    "+tc.target+"\n  }\n}\n")
			ports := freeTCPPorts(t, 2)
			copyFile(t, "", filepath.Join(cfgDir, "00-base.hcl"), fmt.Sprintf("data_dir = %q\nhttp {\n  address = \"127.0.0.1:%d\"\n}\n"+
				"server {\n  raft_port = %d\n}\nnomad {\n  address = \"http://127.0.0.1:1\"\n}\npolicies {\n  dir = %q\n}\n",
				filepath.Join(dir, "data"), ports[0], ports[1], polDir))
			code, stdout, stderr := run(t, "policy", "validate", polDir)
			if code != ExitInvalid || stdout != "" || !strings.Contains(stderr, tc.want) ||
				!strings.Contains(stderr, filepath.Join(polDir, "web.hcl")+":") {
				t.Errorf("policy validate: exit %d\n%s%s\nwant %d, web.hcl:LINE and %q", code, stdout, stderr, ExitInvalid, tc.want)
			}
			acode, aerr := runAgent(t, "-config", cfgDir)
			if acode != ExitInvalid || !strings.Contains(aerr, strings.TrimSpace(stderr)) {
				t.Errorf("the agent: exit %d\n%s\npolicy validate: exit %d\n%s", acode, aerr, code, stderr)
			}
		})
	}
	t.Run("exec program not installed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "web.hcl")
		copyFile(t, "", path, "shaping \"web\" {\n  locality {\n    datacenter = \"dc1\"\n  }\n"+
			"  scale \"more\" {\n    min = 1\n    max = 4\n    target \"exec\" {\n      command = [\"/nonexistent/scale\"]\n    }\n  }\n}\n")
		if code, _, stderr := run(t, "policy", "validate", path); code != ExitOK {
			t.Errorf("policy validate: exit %d\n%s", code, stderr)
		}
	})
}
