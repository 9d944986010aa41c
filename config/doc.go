// Package config is the foreshape agent's configuration: its types, safe
// production defaults, and loading from HCL.
//
// Loading runs defaults → decode each file → validate each file → merge:
// Load takes a file or a directory of *.hcl files (alphabetical, later
// files override earlier ones, attribute by attribute; lists are replaced,
// not appended). ApplyEnv then applies the usual NOMAD_* and CONSUL_HTTP_*
// environment overrides, and Validate checks the rules that span fields.
// Every error is an hcl.Diagnostic pointing at the attribute that caused it
// and naming the field ("Invalid server.raft_port"), or naming the
// environment variable when the value came from there.
//
// Credentials are held as Secret values, which print, marshal and log as
// "<redacted>"; only Secret.Reveal returns them, for the one place that
// hands them to a client.
//
// This package must never log, read the environment except through the
// getenv function it is given, open network connections or look the host
// up except through the Host CheckListen is given, or reveal a secret in
// any String, JSON or HCL form.
package config
