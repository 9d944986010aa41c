package config_test

import (
	"strings"
	"testing"

	"github.com/foreshape/foreshape/config"
)

// TestNomadTokenFileRefusedWithToken: nomad.token_file and nomad.token
// both set are refused, pointing at token_file's line in the file; when
// NOMAD_TOKEN set the token (a task given its workload identity in the
// environment too), the message says so. token_file alone is valid.
func TestNomadTokenFileRefusedWithToken(t *testing.T) {
	c, diags := loadSrc(t, "nomad {\n  address    = \"http://127.0.0.1:4646\"\n  token_file = \"/secrets/nomad_token\"\n}\n")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.Nomad.TokenFile != "/secrets/nomad_token" {
		t.Errorf("token_file %q", c.Nomad.TokenFile)
	}
	if diags := c.Validate(); len(diags) != 0 {
		t.Errorf("token_file alone: %s", diags.Error())
	}

	_, diags = loadSrc(t, "nomad {\n  token      = \"t0k\"\n  token_file = \"/secrets/nomad_token\"\n}\n")
	if len(diags) != 1 || diags[0].Summary != "Invalid nomad.token_file" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 3 ||
		!strings.Contains(diags[0].Detail, "a request to Nomad carries one token") {
		t.Errorf("token and token_file: %s; want Invalid nomad.token_file at line 3", diags.Error())
	}

	c, diags = loadSrc(t, "nomad {\n  token_file = \"/secrets/nomad_token\"\n}\n")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	env := map[string]string{"NOMAD_TOKEN": "from-the-environment"}
	diags = append(config.ApplyEnv(c, func(k string) string { return env[k] }), c.Validate()...)
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 ||
		!strings.Contains(diags[0].Detail, "nomad.token is set by environment variable NOMAD_TOKEN") {
		t.Errorf("token_file with NOMAD_TOKEN: %s; want it refused at line 2, naming NOMAD_TOKEN", diags.Error())
	}
}
