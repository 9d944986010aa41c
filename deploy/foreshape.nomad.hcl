# foreshape as a Nomad system job: one agent on every eligible client node.
#
# Three of them are Raft servers (voters); the others run their HTTP API and
# forward to the leader once the multi-node cluster lands. Until then, run
# the job with a constraint that keeps it on one node (see the commented
# constraint below) and server.bootstrap_expect = 1.
#
# The agent reads Nomad through the local client's API; its token comes from
# Nomad Variables (nomad var put nomad/jobs/foreshape token=...) and needs
# the ACL policy in foreshape-acl.hcl.
job "foreshape" {
  type     = "system"
  priority = 75

  # constraint {
  #   attribute = "${node.unique.name}"
  #   value     = "nomad-client-1"
  # }

  group "foreshape" {
    network {
      port "http" {
        static = 7575
      }
      port "raft" {
        static = 7576
      }
    }

    service {
      name     = "foreshape"
      port     = "http"
      provider = "consul"

      check {
        type     = "http"
        path     = "/v1/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "agent" {
      driver = "exec"

      config {
        command = "local/foreshape"
        args    = ["agent", "-config", "local/agent.hcl"]
      }

      artifact {
        # Replace with where you publish the foreshape binary.
        source = "https://example.invalid/foreshape/foreshape_linux_amd64"
        mode   = "file"
        destination = "local/foreshape"
      }

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          name      = "{{ env "node.unique.name" }}"
          data_dir  = "{{ env "NOMAD_ALLOC_DIR" }}/data"
          bind_addr = "{{ env "NOMAD_IP_raft" }}"

          server {
            enabled          = true
            bootstrap_expect = 1
            raft_port        = {{ env "NOMAD_PORT_raft" }}
          }

          nomad {
            address = "http://{{ env "attr.unique.network.ip-address" }}:4646"
          }

          http {
            address = "{{ env "NOMAD_IP_http" }}:{{ env "NOMAD_PORT_http" }}"
          }

          policies {
            dir = "{{ env "NOMAD_TASK_DIR" }}/policies"
          }
        EOT
      }

      # Your shaping policies: every *.hcl under local/policies. An artifact
      # (a git repository or an archive) or one template per file works.
      artifact {
        # Replace with where you keep your policies.
        source      = "git::https://example.invalid/ops/foreshape-policies.git"
        destination = "local/policies"
      }

      template {
        destination = "secrets/nomad.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/foreshape" }}NOMAD_TOKEN={{ .token }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
