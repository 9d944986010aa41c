package config

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/hcl/v2"
)

// setter validates a value for one field, given as text, and sets it.
type setter func(c *Config, v string) error

func setString(dst func(*Config) *string, check func(string) (string, error)) setter {
	return func(c *Config, v string) error {
		n, err := check(v)
		if err != nil {
			return err
		}
		*dst(c) = n
		return nil
	}
}

func setSecret(dst func(*Config) *Secret) setter {
	return func(c *Config, v string) error {
		if _, err := checkToken(v); err != nil {
			return err
		}
		*dst(c) = Secret(v)
		return nil
	}
}

func setBool(dst func(*Config) *bool) setter {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*dst(c) = b
		return nil
	}
}

// setters are the fields Set and ApplyEnv can change from text.
var setters = map[string]setter{
	"name":                  setString(func(c *Config) *string { return &c.Name }, checkName),
	"data_dir":              setString(func(c *Config) *string { return &c.DataDir }, checkDataDir),
	"bind_addr":             setString(func(c *Config) *string { return &c.BindAddr }, checkIP),
	"log_level":             setString(func(c *Config) *string { return &c.LogLevel }, checkLogLevel),
	"http.address":          setString(func(c *Config) *string { return &c.HTTP.Address }, checkListen),
	"policies.dir":          setString(func(c *Config) *string { return &c.Policies.Dir }, checkPath),
	"nomad.address":         setString(func(c *Config) *string { return &c.Nomad.Address }, checkNomadAddress),
	"nomad.region":          setString(func(c *Config) *string { return &c.Nomad.Region }, checkIdent),
	"nomad.namespace":       setString(func(c *Config) *string { return &c.Nomad.Namespace }, checkIdent),
	"nomad.token":           setSecret(func(c *Config) *Secret { return &c.Nomad.Token }),
	"nomad.ca_file":         setString(func(c *Config) *string { return &c.Nomad.CAFile }, checkPath),
	"nomad.cert_file":       setString(func(c *Config) *string { return &c.Nomad.CertFile }, checkPath),
	"nomad.key_file":        setString(func(c *Config) *string { return &c.Nomad.KeyFile }, checkPath),
	"nomad.tls_server_name": setString(func(c *Config) *string { return &c.Nomad.TLSServerName }, checkServerName),
	"nomad.skip_verify":     setBool(func(c *Config) *bool { return &c.Nomad.SkipVerify }),
	"consul.address":        setString(func(c *Config) *string { return &c.Consul.Address }, checkConsulAddress),
	"consul.token":          setSecret(func(c *Config) *Secret { return &c.Consul.Token }),
}

// envVars are the environment overrides ApplyEnv honours, with the Nomad
// and Consul CLIs' meanings, in the order they apply.
var envVars = []struct{ name, field string }{
	{"NOMAD_ADDR", "nomad.address"},
	{"NOMAD_REGION", "nomad.region"},
	{"NOMAD_NAMESPACE", "nomad.namespace"},
	{"NOMAD_TOKEN", "nomad.token"},
	{"NOMAD_CACERT", "nomad.ca_file"},
	{"NOMAD_CLIENT_CERT", "nomad.cert_file"},
	{"NOMAD_CLIENT_KEY", "nomad.key_file"},
	{"NOMAD_TLS_SERVER_NAME", "nomad.tls_server_name"},
	{"NOMAD_SKIP_VERIFY", "nomad.skip_verify"},
	{"CONSUL_HTTP_ADDR", "consul.address"},
	{"CONSUL_HTTP_TOKEN", "consul.token"},
}

// IgnoredVar is an environment variable the nomad CLI (and the nomad/api
// library's defaults) read that foreshape has no setting for, and so does
// not use: the agent logs it and `config validate -env` notes it, instead
// of a library using it unseen.
type IgnoredVar struct {
	Name   string // "NOMAD_HTTP_AUTH"
	Reason string // why, and what to do instead
}

var ignoredEnv = []IgnoredVar{
	{"NOMAD_HTTP_AUTH", "foreshape has no setting for HTTP basic auth to Nomad and sends none; Nomad's ACLs take nomad.token (NOMAD_TOKEN)"},
	{"NOMAD_CAPATH", "foreshape reads Nomad's CA from one file: set nomad.ca_file (NOMAD_CACERT) to a bundle of the CAs"},
}

// IgnoredEnv lists the variables of IgnoredVar's kind that getenv sets.
func IgnoredEnv(getenv func(string) string) []IgnoredVar {
	var out []IgnoredVar
	for _, v := range ignoredEnv {
		if getenv(v.Name) != "" {
			out = append(out, v)
		}
	}
	return out
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
		if v := getenv(e.name); v != "" {
			diags = append(diags, Set(cfg, e.field, v, "environment variable "+e.name)...)
		}
	}
	return diags
}

// Set validates value and sets field (its dotted name, such as
// "http.address") on cfg, recording source ("flag -http-addr") for later
// messages. It serves command-line flags. An invalid value is an error
// diagnostic naming the field and the source, and leaves cfg unchanged.
func Set(cfg *Config, field, value, source string) hcl.Diagnostics {
	set, ok := setters[field]
	if !ok {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown setting " + field,
			Detail:   fmt.Sprintf("%s cannot set %s.", source, field),
		}}
	}
	if err := set(cfg, value); err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid %s from %s", field, source),
			Detail:   capitalise(err.Error()) + ".",
		}}
	}
	cfg.setOrigin(field, origin{desc: source})
	return nil
}
