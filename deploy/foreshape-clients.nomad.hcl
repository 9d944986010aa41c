# foreshape's client agents: one on every Nomad client node. Each reads its
# own node's stats from the local Nomad agent once per cycle and reports
# them to the leader through any server, which it finds in Consul's catalog
# (retry_join "provider=consul"): the leader then does not poll that node,
# so its requests to Nomad do not grow with the cluster. Each agent
# registers itself in Consul with the tag client, and deregisters when it
# stops.
#
# Run foreshape-servers.nomad.hcl first. The token comes from Nomad Variables
#   nomad var put nomad/jobs/foreshape-clients nomad_token=... consul_token=... ca=... cert=... key=...
# and needs the ACL policy in foreshape-acl.hcl (a client agent reads its
# node, its node's allocations and their stats, and the local agent).
# The task's workload identity can take the token's place, under that
# policy attached to the job (Nomad 1.5+; measured on 2.0.6):
# docs/deployment.md "Workload identity instead of a token".
job "foreshape-clients" {
  type      = "system"
  priority  = 80
  node_pool = "all"

  group "client" {
    network {
      port "http" {}
    }

    service {
      name     = "foreshape-client-health"
      provider = "nomad"
      port     = "http"

      # /v1/health answers without a client certificate. protocol is
      # "https" with the tls block of the agent's configuration, "http"
      # without it.
      check {
        type            = "http"
        protocol        = "https"
        tls_skip_verify = true
        path            = "/v1/health"
        interval        = "30s"
        timeout         = "2s"
      }
    }

    task "agent" {
      driver = "exec"

      # A clean stop (SIGINT) lets requests in flight finish and
      # deregisters from Consul: at most 5 s, Nomad's default
      # kill_timeout, so give it more.
      kill_timeout = "10s"

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

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          name = "{{ env "node.unique.name" }}"

          server {
            enabled    = false
            retry_join = ["provider=consul"]
          }

          # The Nomad agent on this node, and the node this agent reports on.
          nomad {
            address = "http://{{ env "attr.unique.network.ip-address" }}:4646"
            node_id = "{{ env "node.unique.id" }}"
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
        EOT
      }

      template {
        destination = "secrets/agent.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/foreshape-clients" }}
          NOMAD_TOKEN={{ .nomad_token }}
          CONSUL_HTTP_TOKEN={{ .consul_token }}
          {{ end }}
        EOT
      }

      template {
        destination = "secrets/ca.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-clients\" }}{{ .ca }}{{ end }}"
      }

      template {
        destination = "secrets/agent.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-clients\" }}{{ .cert }}{{ end }}"
      }

      template {
        destination = "secrets/agent-key.pem"
        data        = "{{ with nomadVar \"nomad/jobs/foreshape-clients\" }}{{ .key }}{{ end }}"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
