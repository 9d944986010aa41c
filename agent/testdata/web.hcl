# A small scenario for agent tests that move a web allocation or run a
# leader by hand (webScenario in agent_test.go says why): two datacenters
# of two web nodes each and one web job of two allocations, which prefers
# dc1, so that dc2 has room to take one. web-policies.hcl shapes dc1.
name    = "web"
seed    = 7
start   = "2026-02-02T00:00:00Z"
tick    = "10s"
startup = "5s"

datacenter "dc1" {
  bandwidth = 100
}

datacenter "dc2" {
  bandwidth = 100
}

nodes "dc1-web" {
  datacenter = "dc1"
  count      = 2
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 3000
}

nodes "dc2-web" {
  datacenter = "dc2"
  count      = 2
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 3000
}

trace "cpu" {
  file = "planetlab/20110303/ait05_us_es_princeton_codeen"
  unit = "percent"
}

job "web" {
  type        = "service"
  datacenters = ["dc1", "dc2"]

  constraint {
    attribute = "node.class"
    value     = "web"
  }

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 80
  }

  group "frontend" {
    count  = 2
    cpu    = 1000
    memory = 1024
    iops   = 200

    load {
      cpu {
        trace = "cpu"
        scale = 2.0
      }
      memory {
        scale = 0.5
      }
    }
  }
}
