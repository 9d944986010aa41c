# foreshape agent configuration.
#
# foreshape reads one file, or every *.hcl file of a directory in
# alphabetical order (later files override earlier ones; hidden files,
# such as an editor's lock or backup, are not read). Every setting
# below is optional unless it says otherwise; the values shown are examples
# for a three-server cluster, and the comments give the defaults.
#
# SIGHUP reloads the files: log_level, the acl block (its token files read
# again), the policies, and the tls block's certificate, key and CA files
# replaced in place (for new connections) take effect at once; every other
# setting changed, and a nomad.* or prometheus.* certificate or CA file
# replaced in place, is logged by name and takes effect at the next start.
# (prometheus.token_file and password_file are read at every query.)
#
#   foreshape config validate example.hcl
#   foreshape config show example.hcl
#   foreshape agent -config example.hcl

# Agent name in the cluster, a server's or a client agent's. Default: the host
# name; an agent whose host name is unknown refuses to start until name is set.
name = "foreshape-1"

# Raft logs and snapshots. Default "/var/lib/foreshape".
data_dir = "/var/lib/foreshape"

# IP address the Raft transport binds to. Default "127.0.0.1"; servers that
# expect peers need an address those peers can reach.
bind_addr = "0.0.0.0"

# The IP address other agents and Consul reach this agent at: its Raft
# port, and its HTTP API when http.address listens on every interface (an
# http.address with an IP is reached at that IP). Default bind_addr.
# Required when either binds every interface (0.0.0.0), as here. A client
# agent or a dev agent binds no Raft port: it refuses advertise_addr unless
# http.address listens on every interface.
advertise_addr = "10.0.0.11"

# trace, debug, info, warn or error. Default "info".
log_level = "info"

# JSON log lines. Default false.
log_json = false

# dev_mode is not a setting: run `foreshape agent -dev` for a single
# in-memory server.

server {
  # A Raft server. Default true; false makes a client agent, which reads its
  # own Nomad node's stats and reports them to the servers in retry_join.
  enabled = true

  # Voting servers that find each other before they bootstrap a new cluster
  # together. Default: none, a single server that bootstraps alone. Required
  # with retry_join, and the same on every server.
  bootstrap_expect = 3

  # Servers to join (a client agent: to report to): HOST or HOST:PORT of
  # their Raft port (the port defaults to raft_port), or
  # "provider=consul service=NAME" to look them up in Consul's catalog
  # (servers register their Raft address there; NAME defaults to
  # consul.service_name).
  retry_join = ["10.0.0.12", "10.0.0.13:7576", "provider=consul"]

  # Raft port; the agents' own calls (joins, client reports) share it.
  # Default 7576. A client agent binds none: there it is only the port of
  # the retry_join addresses that name none, and refused without one.
  raft_port = 7576

  # false joins as a non-voter that is never promoted. Default true.
  voter = true

  # Voters the leader keeps: 1, 3 or 5. Further servers are spares
  # (non-voters). Default: bootstrap_expect.
  voters = 3

  # A voter silent this long is replaced by a healthy spare. Default "30s";
  # at least "1s".
  promote_after = "30s"

  # A server silent this long leaves the cluster. Default "10m"; at least
  # "1s" and longer than promote_after.
  remove_after = "10m"

  # Raft snapshots: a server snapshots its state once this many log entries
  # have come since its last snapshot, checking every raft_snapshot_interval
  # (at random, up to twice that), and keeps raft_trailing_logs entries
  # behind the snapshot so that a follower that far behind catches up from
  # the log. Defaults 256, "2m", 256; the counts 1-1000000, the interval
  # "1s"-"24h".
  raft_snapshot_threshold = 256
  raft_snapshot_interval  = "2m"
  raft_trailing_logs      = 256
}

nomad {
  # Nomad's HTTP API; NOMAD_ADDR overrides. Default "http://127.0.0.1:4646".
  address = "https://nomad.service.consul:4646"

  # NOMAD_REGION and NOMAD_NAMESPACE override. Default: the Nomad agent's.
  # The namespace placeholder jobs are registered in and scale targets'
  # jobs default to: one namespace, not Nomad's wildcard "*".
  region    = "global"
  namespace = "default"

  # ACL token; NOMAD_TOKEN overrides. Prefer the environment variable to
  # keeping the token in a file. Never printed by foreshape.
  token = ""

  # Or a file holding the token, read again for every request: a Nomad
  # task's workload identity (identity { file = true } writes
  # ${NOMAD_SECRETS_DIR}/nomad_token). Not with token or NOMAD_TOKEN.
  # token_file = "/secrets/nomad_token"

  # TLS to Nomad; NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and
  # NOMAD_TLS_SERVER_NAME override. cert_file and key_file come together.
  # Used only with an https:// address: with http:// a file setting them
  # is refused (from the environment they are logged as unused at start).
  ca_file         = "/etc/foreshape/tls/nomad-ca.pem"
  cert_file       = "/etc/foreshape/tls/nomad-client.pem"
  key_file        = "/etc/foreshape/tls/nomad-client-key.pem"
  tls_server_name = "server.global.nomad"

  # Never in production: disables verification of Nomad's certificate.
  # NOMAD_SKIP_VERIFY overrides. Default false.
  skip_verify = false

  # A client agent's Nomad node: its whole ID, a UUID (not its name or a
  # prefix). Default: asked of the local Nomad agent. A server refuses it.
  # node_id = "9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f"
}

consul {
  # Register the agent's HTTP API as a Consul service, tagged with its role
  # (leader, follower or client) and with its version and Raft address in
  # the service's meta, checked on /v1/health and, for a server, on
  # /v1/ready; and beside it as
  # SERVICE_NAME-metrics, tagged server or client and checked on
  # /v1/health, which Prometheus finds every running agent through, ready
  # or not (docs/telemetry.md). Both deregistered on a clean shutdown.
  # Default false.
  enabled = true

  # HOST:PORT, an http(s):// URL or unix://PATH (the Consul agent's socket).
  # CONSUL_HTTP_ADDR overrides. Default "127.0.0.1:8500". address and
  # token need enabled = true or a provider=consul retry_join entry.
  address = "127.0.0.1:8500"

  # CONSUL_HTTP_TOKEN overrides. Never printed by foreshape. Under Consul's
  # ACLs it needs the policy deploy/foreshape-consul-acl.hcl.
  token = ""

  # Default "foreshape". Also the name provider=consul looks servers up
  # under. tags need enabled = true, and may not name a role (leader,
  # follower, client or server): the agent adds its own; none may be
  # listed twice.
  service_name = "foreshape"
  tags         = ["shaper", "dc1"]
}

# Optional metric source: Prometheus's HTTP API (node_exporter provides the
# IOPS that Nomad does not report), or an API that speaks it (Thanos,
# Mimir, Cortex). Default: none. See docs/configuration.md for how the
# agent reaches it and what it does when Prometheus fails.
prometheus {
  # http:// or https://, without USER:PASSWORD@ (set username and
  # password_file instead).
  address = "https://prometheus.service.consul:9090"

  # TLS to Prometheus, its files read at the agent's start: the CAs its
  # certificate is checked against (default: the host's trusted CAs;
  # SSL_CERT_FILE or SSL_CERT_DIR in the agent's environment name others), a
  # client certificate and its key for a Prometheus that requires one
  # (cert_file and key_file come together), and the name its certificate
  # is checked for (default: the address's host). Used only with an
  # https:// address: with http:// they are refused.
  ca_file = "/etc/foreshape/tls/prometheus-ca.pem"
  # cert_file       = "/etc/foreshape/tls/prometheus-client.pem"
  # key_file        = "/etc/foreshape/tls/prometheus-client-key.pem"
  # tls_server_name = "prometheus.service.consul"

  # Never in production: disables verification of Prometheus's
  # certificate. Default false.
  skip_verify = false

  # Credentials sent with every query, each read from its file again for
  # every request, so that a rotated token or password is used without a
  # restart or reload: a bearer token (token_file), or basic auth
  # (username with password_file), not both. Default: none.
  # token_file    = "/etc/foreshape/prometheus-token"
  # username      = "foreshape"
  # password_file = "/etc/foreshape/prometheus-password"

  # Headers sent with every query, such as a Mimir or Cortex tenant. Not
  # Authorization (set the files above), Host, nor those the HTTP client
  # sets (Content-Type, …). Their values are never printed. Default: none.
  # headers = { "X-Scope-OrgID" = "tenant-1" }

  # How to read a locality's IOPS: a PromQL template where {{.Matchers}}
  # stands for the locality's label matchers. Default: node_exporter's disk
  # reads and writes per second, summed over the locality's nodes. Needs
  # address. Validation checks the template, not the PromQL: a query
  # Prometheus refuses is logged at the first collection.
  iops_query = "sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m])) + sum(rate(node_disk_writes_completed_total{ {{.Matchers}} }[5m]))"
}

# The agent's HTTP API. Default "127.0.0.1:7575".
http {
  address = "0.0.0.0:7575"
}

# TLS for the agent's HTTP API, its Raft port and the agents' calls to each
# other. cert_file and key_file come together. With ca_file, the Raft port
# and agent-to-agent calls use mutual TLS (both sides present a certificate
# signed by ca_file); a cluster with TLS needs it. verify_incoming requires
# a client certificate on every HTTP API request except /v1/health and
# /v1/ready (so health checks need none).
tls {
  ca_file         = "/etc/foreshape/tls/ca.pem"
  cert_file       = "/etc/foreshape/tls/agent.pem"
  key_file        = "/etc/foreshape/tls/agent-key.pem"
  verify_incoming = true
}

# Require a token on every HTTP API request except /v1/health and
# /v1/ready (so health checks need none). Default false.
acl {
  enabled = true

  # Accepted tokens, one a line (a line starting with # is a comment).
  # Required when enabled, refused otherwise.
  token_file = "/etc/foreshape/acl-tokens"

  # Tokens that may only read (GET and HEAD, not a backup), in the same
  # form: for dashboards and monitoring that must not change the queue.
  # A token in both files is refused. Optional.
  # read_token_file = "/etc/foreshape/acl-read-tokens"
}

# Shaping policies: every *.hcl file in this directory (not hidden ones,
# nor subdirectories).
# Default "/etc/foreshape/policies.d".
policies {
  dir = "/etc/foreshape/policies.d"
}

telemetry {
  # Serve the agent's metrics in Prometheus format. Default true.
  # They are on /v1/metrics, a client agent's its own; docs/telemetry.md
  # lists them, and deploy/foreshape-alerts.rules.yml alerts on them.
  prometheus_metrics = true
}

# Plan and record, but change nothing in Nomad and call no scale target: a
# dry run of every policy. Default false. This and the reserve and queue
# blocks apply to servers (the leader plans and acts); a client agent
# refuses them.
forecast_only = false

# How placeholder jobs (the reservations that hold room for migrations) run
# their one task. Policies say where, when and how much; only this block
# says what runs. Default: docker with the pause image. For raw_exec:
# driver = "raw_exec", config = { command = "/bin/sleep", args = ["infinity"] }.
# The nodes work moves to must run this driver: where Nomad filters out
# every node for it, foreshape does not scale for the reservation and the
# request's reason says what to set (a restart applies a change here).
reserve {
  driver = "docker"
  config = {
    image = "registry.k8s.io/pause:3.10"
  }
}

# The migration queue's bounds.
queue {
  # Unfinished requests at most; a submission beyond it is refused (HTTP
  # 429). Default 1000.
  max_requests = 1000
  # Moves running at once across the cluster; 0 leaves only each policy's
  # migrate.max_parallel. Default 0.
  max_parallel = 0
  # How long a finished request stays in the queue (queue list, the API)
  # at least, 1h-366d. The leader then forgets it, its intents and its
  # released reservations, once nothing reads it any more: its origin
  # submits no more, the work it moved no longer counts at its target (a
  # season, a day by default), and every node it took out of scheduling
  # to give back is back (a node moved away whole stays out by design).
  # Default "1d"; "1h"-"366d".
  keep_finished = "1d"
}
