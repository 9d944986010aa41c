# foreshape's servers: three Raft voters (set count = 5 and bootstrap_expect =
# 5 for five), one per node, on the nodes an operator marked for them:
#
#   nomad node meta apply -node-id <id> foreshape_server=true
#
# The servers find each other in Consul's catalog (retry_join
# "provider=consul"): each agent registers itself in Consul, tagged with its
# role (leader or follower) and with its Raft address in the service's
# meta, and deregisters when it stops. The job's own service below uses
# Nomad's service discovery for its health check only, so Consul holds one
# registration per agent.
#
# The agents call Nomad with their task's workload identity, which carries
# the ACL policy in foreshape-acl.hcl attached to this job before it runs:
#   nomad acl policy apply -namespace default -job foreshape-servers -description "foreshape servers" foreshape-servers deploy/foreshape-acl.hcl
# (docs/deployment.md; "A static token instead of workload identity" there
# for a Nomad token of your own instead). Their Consul token and TLS
# material come from Nomad Variables
#   nomad var put nomad/jobs/foreshape-servers consul_token=... ca=... cert=... key=...
# Drop the tls block and its templates if your network is trusted.
job "foreshape-servers" {
  type     = "service"
  priority = 80

  constraint {
    attribute = "${meta.foreshape_server}"
    value     = "true"
  }

  group "server" {
    count = 3

    # A rolling update replaces one server at a time and moves on only once
    # the new one passes its check: /v1/ready below, which passes once the
    # server has rejoined the cluster and caught up with the leader. Two
    # servers down at once would leave three without a quorum.
    #
    # An update whose new server never passes (a wrong artifact, a bad
    # template) keeps that server down: Nomad reschedules it until the
    # deployment's progress deadline (10m by default). auto_revert then
    # runs the last version that deployed, which places only that server
    # again. Run no other version meanwhile: a new deployment replaces a
    # healthy server at once, and with the failed one that is two down
    # (docs/deployment.md).
    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "5m"
      auto_revert      = true
    }

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # Raft state survives a restart of the task and a job update on the
    # same node (the new allocation takes the old one's disk). Not a node
    # drain: the drained server's replacement waits for its node to be
    # eligible again (no other node takes a second server) and starts
    # empty, copying the state from the leader. Drain the servers' nodes
    # one at a time (docs/deployment.md).
    ephemeral_disk {
      size    = 1024
      sticky  = true
      migrate = true
    }

    network {
      port "http" {}
      # Raft knows each server by its address (node address and port): a
      # static port keeps it across restarts. Servers that all came back
      # at new dynamic ports could no longer elect a leader.
      port "raft" {
        static = 7576
      }
    }

    service {
      name     = "foreshape-server-health"
      provider = "nomad"
      port     = "http"

      # /v1/ready answers 200 once the server knows a leader and has
      # applied what the leader had committed, 503 and why until then
      # (/v1/health answers as long as the process serves). Both answer
      # without a client certificate. protocol is "https" with the tls
      # block of the agent's configuration, "http" without it. /v1/ready
      # waits at most 1 s for the leader's answer and the catch-up, well
      # within the timeout, so a slow one fails the check as "not ready"
      # and why rather than as a timeout.
      check {
        type            = "http"
        protocol        = "https"
        tls_skip_verify = true
        path            = "/v1/ready"
        interval        = "10s"
        timeout         = "5s"
      }
    }

    task "agent" {
      driver = "exec"

      # A clean stop (SIGINT) ends the HTTP API, tells the peers this
      # server leaves, hands leadership over and stops Raft: at most
      # 18.5 s when Consul, a peer or Raft is slow, usually well under a
      # second. Nomad kills the task after kill_timeout (5 s by default).
      kill_timeout = "20s"

      config {
        command = "local/foreshape"
        args    = ["agent", "-config", "local/agent.hcl"]
      }

      artifact {
        # Replace with where you publish the foreshape binary.
        source      = "https://example.invalid/foreshape/foreshape_linux_amd64"
        mode        = "file"
        destination = "local/foreshape"
      }

      # The agent calls Nomad with the task's workload identity: Nomad
      # writes its token to secrets/nomad_token (nomad.token_file below),
      # and it carries the ACL policy attached to this job.
      identity {
        file = true
      }

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          name           = "{{ env "node.unique.name" }}"
          data_dir       = "{{ env "NOMAD_ALLOC_DIR" }}/data"
          bind_addr      = "{{ env "NOMAD_IP_raft" }}"

          server {
            enabled          = true
            bootstrap_expect = 3
            retry_join       = ["provider=consul"]
            raft_port        = {{ env "NOMAD_PORT_raft" }}
          }

          # Nomad's Task API, the socket Nomad serves in the task's
          # secrets directory, with the token of the task's workload
          # identity (the task's identity block). The socket asks for no
          # certificate, under Nomad's TLS too (docs/deployment.md).
          nomad {
            address    = "unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock"
            token_file = "{{ env "NOMAD_SECRETS_DIR" }}/nomad_token"
          }

          consul {
            enabled = true
          }

          http {
            address = "{{ env "NOMAD_ADDR_http" }}"
          }

          tls {
            ca_file         = "{{ env "NOMAD_SECRETS_DIR" }}/ca.pem"
            cert_file       = "{{ env "NOMAD_SECRETS_DIR" }}/agent.pem"
            key_file        = "{{ env "NOMAD_SECRETS_DIR" }}/agent-key.pem"
            verify_incoming = true
          }

          policies {
            dir = "{{ env "NOMAD_TASK_DIR" }}/policies"
          }
        EOT
      }

      # Your shaping policies: every *.hcl under local/policies.
      artifact {
        # Replace with where you keep your policies.
        source      = "git::https://example.invalid/ops/foreshape-policies.git"
        destination = "local/policies"
      }

      # The secrets' templates do not restart the task when the variable
      # changes (change_mode "noop"): each server would restart on its
      # own within a few seconds of the others, and two servers down at
      # once leave three without a quorum. After a change, restart them
      # one at a time (docs/deployment.md "Rotating the secrets"):
      #   nomad job restart -batch-wait 30s foreshape-servers
      template {
        change_mode = "noop"
        destination = "secrets/agent.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/foreshape-servers" }}
          CONSUL_HTTP_TOKEN={{ .consul_token }}
          {{ end }}
        EOT
      }

      template {
        change_mode = "noop"
        destination = "secrets/ca.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-servers\" }}{{ .ca }}{{ end }}"
      }

      template {
        change_mode = "noop"
        destination = "secrets/agent.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-servers\" }}{{ .cert }}{{ end }}"
      }

      template {
        change_mode = "noop"
        destination = "secrets/agent-key.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-servers\" }}{{ .key }}{{ end }}"
      }

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}
