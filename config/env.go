package config

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/hcl/v2"
)

// envVar is one environment override: the variable and the field it sets.
type envVar struct {
	name  string
	field string
	apply func(c *Config, v string) error
}

func envString(dst func(*Config) *string, check func(string) (string, error)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := check(v)
		if err != nil {
			return err
		}
		*dst(c) = n
		return nil
	}
}

// EnvVars are the environment overrides ApplyEnv honours, with the Nomad
// and Consul CLIs' meanings.
var envVars = []envVar{
	{"NOMAD_ADDR", "nomad.address", envString(func(c *Config) *string { return &c.Nomad.Address }, checkNomadAddress)},
	{"NOMAD_REGION", "nomad.region", envString(func(c *Config) *string { return &c.Nomad.Region }, checkIdent)},
	{"NOMAD_NAMESPACE", "nomad.namespace", envString(func(c *Config) *string { return &c.Nomad.Namespace }, checkIdent)},
	{"NOMAD_TOKEN", "nomad.token", func(c *Config, v string) error {
		if _, err := checkToken(v); err != nil {
			return err
		}
		c.Nomad.Token = Secret(v)
		return nil
	}},
	{"NOMAD_CACERT", "nomad.ca_file", envString(func(c *Config) *string { return &c.Nomad.CAFile }, checkPath)},
	{"NOMAD_CLIENT_CERT", "nomad.cert_file", envString(func(c *Config) *string { return &c.Nomad.CertFile }, checkPath)},
	{"NOMAD_CLIENT_KEY", "nomad.key_file", envString(func(c *Config) *string { return &c.Nomad.KeyFile }, checkPath)},
	{"NOMAD_TLS_SERVER_NAME", "nomad.tls_server_name", envString(func(c *Config) *string { return &c.Nomad.TLSServerName }, checkServerName)},
	{"NOMAD_SKIP_VERIFY", "nomad.skip_verify", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		c.Nomad.SkipVerify = b
		return nil
	}},
	{"CONSUL_HTTP_ADDR", "consul.address", envString(func(c *Config) *string { return &c.Consul.Address }, checkConsulAddress)},
	{"CONSUL_HTTP_TOKEN", "consul.token", func(c *Config, v string) error {
		if _, err := checkToken(v); err != nil {
			return err
		}
		c.Consul.Token = Secret(v)
		return nil
	}},
}

// EnvVarNames lists the environment variables ApplyEnv reads.
func EnvVarNames() []string {
	out := make([]string, len(envVars))
	for i, e := range envVars {
		out[i] = e.name
	}
	return out
}

// ApplyEnv overrides cfg's settings with the non-empty environment
// variables among EnvVarNames, read through getenv (os.Getenv in the
// agent, a map in tests). The environment wins over files. An invalid
// value is an error diagnostic naming the variable and the field, and
// leaves the setting unchanged.
func ApplyEnv(cfg *Config, getenv func(string) string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, e := range envVars {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		if err := e.apply(cfg, v); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid %s from environment variable %s", e.field, e.name),
				Detail:   capitalise(err.Error()) + ".",
			})
			continue
		}
		cfg.setOrigin(e.field, origin{env: e.name})
	}
	return diags
}
