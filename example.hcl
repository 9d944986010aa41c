# foreshape agent configuration.
#
# foreshape reads one file, or every *.hcl file of a directory in
# alphabetical order (later files override earlier ones). Every setting
# below is optional unless it says otherwise; the values shown are examples
# for a three-server cluster, and the comments give the defaults.
#
#   foreshape config validate example.hcl
#   foreshape config show example.hcl
#   foreshape agent -config example.hcl

# Agent name in the cluster. Default: the host name.
name = "foreshape-1"

# Raft logs and snapshots. Default "/var/lib/foreshape".
data_dir = "/var/lib/foreshape"

# IP address the Raft transport binds to. Default "127.0.0.1"; servers that
# expect peers need an address those peers can reach.
bind_addr = "0.0.0.0"

# trace, debug, info, warn or error. Default "info".
log_level = "info"

# JSON log lines. Default false.
log_json = false

# dev_mode is not a setting: run `foreshape agent -dev` for a single
# in-memory server.

server {
  # Take part in the Raft cluster. Default false.
  enabled = true

  # Voters to wait for before bootstrapping. Required when enabled.
  bootstrap_expect = 3

  # Peers to join, HOST or HOST:PORT (port defaults to raft_port).
  retry_join = ["10.0.0.11", "10.0.0.12:7576", "foreshape-3.service.consul"]

  # Raft transport port. Default 7576.
  raft_port = 7576

  # false joins as a non-voter. Default true.
  voter = true
}

nomad {
  # Nomad's HTTP API; NOMAD_ADDR overrides. Default "http://127.0.0.1:4646".
  address = "https://nomad.service.consul:4646"

  # NOMAD_REGION and NOMAD_NAMESPACE override. Default: the Nomad agent's.
  region    = "global"
  namespace = "default"

  # ACL token; NOMAD_TOKEN overrides. Prefer the environment variable to
  # keeping the token in a file. Never printed by foreshape.
  token = ""

  # TLS to Nomad; NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and
  # NOMAD_TLS_SERVER_NAME override. cert_file and key_file come together.
  ca_file         = "/etc/foreshape/tls/nomad-ca.pem"
  cert_file       = "/etc/foreshape/tls/nomad-client.pem"
  key_file        = "/etc/foreshape/tls/nomad-client-key.pem"
  tls_server_name = "server.global.nomad"

  # Never in production: disables verification of Nomad's certificate.
  skip_verify = false
}

consul {
  # Register the agent's HTTP API as a Consul service. Default false.
  enabled = true

  # CONSUL_HTTP_ADDR overrides. Default "127.0.0.1:8500".
  address = "127.0.0.1:8500"

  # CONSUL_HTTP_TOKEN overrides. Never printed by foreshape.
  token = ""

  # Default "foreshape".
  service_name = "foreshape"
  tags         = ["shaper", "dc1"]
}

# Optional metric source: Prometheus's HTTP API (node_exporter provides the
# IOPS that Nomad does not report). Default: none.
prometheus {
  address = "http://prometheus.service.consul:9090"
  # How to read a locality's IOPS: a PromQL template where {{.Matchers}}
  # stands for the locality's label matchers. Default: node_exporter's disk
  # reads and writes per second, summed over the locality's nodes.
  iops_query = "sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m])) + sum(rate(node_disk_writes_completed_total{ {{.Matchers}} }[5m]))"
}

# The agent's HTTP API. Default "127.0.0.1:7575".
http {
  address = "0.0.0.0:7575"
}

# TLS for the agent's HTTP API and Raft transport. cert_file and key_file
# come together; verify_incoming needs ca_file.
tls {
  ca_file         = "/etc/foreshape/tls/ca.pem"
  cert_file       = "/etc/foreshape/tls/agent.pem"
  key_file        = "/etc/foreshape/tls/agent-key.pem"
  verify_incoming = true
}

# Require a token on every HTTP API request. Default false.
acl {
  enabled = true

  # Accepted tokens, one a line. Required when enabled.
  token_file = "/etc/foreshape/acl-tokens"
}

# Shaping policies: every *.hcl file in this directory.
# Default "/etc/foreshape/policies.d".
policies {
  dir = "/etc/foreshape/policies.d"
}

telemetry {
  # Serve the agent's metrics in Prometheus format. Default true.
  prometheus_metrics = true
}
