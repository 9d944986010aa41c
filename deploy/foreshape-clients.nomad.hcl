# foreshape's client agents: one on every Nomad client node. Each reads its
# own node's stats from the local Nomad agent once per cycle and reports
# them to the leader through any server, which it finds in Consul's catalog
# (retry_join "provider=consul"): the leader then does not poll that node,
# so its requests to Nomad do not grow with the cluster. Each agent
# registers itself in Consul with the tag client, and deregisters when it
# stops.
#
# Run foreshape-servers.nomad.hcl first. The agents call Nomad with their
# task's workload identity, which carries the ACL policy in
# foreshape-acl.hcl attached to this job before it runs (a client agent
# reads its node, its node's allocations and their stats, and the local
# agent):
#   nomad acl policy apply -namespace default -job foreshape-clients -description "foreshape clients" foreshape-clients deploy/foreshape-acl.hcl
# (docs/deployment.md; "A static token instead of workload identity" there
# for a Nomad token of your own instead). Their Consul token and TLS
# material come from Nomad Variables
#   nomad var put nomad/jobs/foreshape-clients consul_token=... ca=... cert=... key=...
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

      # The agent calls Nomad with the task's workload identity: Nomad
      # writes its token to secrets/nomad_token (nomad.token_file below),
      # and it carries the ACL policy attached to this job.
      identity {
        file = true
      }

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          name = "{{ env "node.unique.name" }}"

          server {
            enabled    = false
            retry_join = ["provider=consul"]
          }

          # Nomad's Task API, the socket Nomad serves in the task's
          # secrets directory, with the token of the task's workload
          # identity (the task's identity block), and the node this agent
          # reports on. The socket asks for no certificate, under Nomad's
          # TLS too (docs/deployment.md).
          nomad {
            address    = "unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock"
            token_file = "{{ env "NOMAD_SECRETS_DIR" }}/nomad_token"
            node_id    = "{{ env "node.unique.id" }}"
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
