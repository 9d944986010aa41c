# The act e2e's scaling case: datacenter A (dc1) goes down for maintenance
# at 07:00 while B (dc2) is full (its own service, "local", holds nearly all
# of it), so the room A's work needs cannot be reserved. B's policy scales
# its "local" service (a nomad-job target) instead; the test rolls out a new
# version of "local" just before, so Nomad refuses the first scale until
# that deployment is over. Bundled traces only.
name      = "act-e2e-scale"
seed      = 9
start     = "2026-01-05T06:00:00Z"
duration  = "3h"
tick      = "10s"
startup   = "10s"
node_boot = "1m"

datacenter "dc1" {
  bandwidth = 200
}

datacenter "dc2" {
  bandwidth = 200
}

nodes "a" {
  datacenter = "dc1"
  count      = 1
  node_class = "app"
  cpu        = 8000
  memory     = 16384
  iops       = 5000
  cores      = 4
}

nodes "b" {
  datacenter = "dc2"
  count      = 2
  node_class = "app"
  cpu        = 8000
  memory     = 16384
  iops       = 5000
  cores      = 4
}

trace "web-cpu" {
  file = "planetlab/20110303/ait05_us_es_princeton_codeen"
  unit = "percent"
}

job "local" {
  type        = "service"
  priority    = 50
  datacenters = ["dc2"]

  group "local" {
    count  = 2
    cpu    = 7500
    memory = 15360

    update {
      max_parallel     = 1
      min_healthy_time = "8m"
      healthy_deadline = "9m"
    }

    load {
      cpu {
        trace = "web-cpu"
        scale = 0.3
      }
      memory {
        scale = 0.3
      }
    }
  }
}

job "app" {
  type        = "service"
  priority    = 60
  datacenters = ["dc1", "dc2"]

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "web" {
    count  = 2
    cpu    = 2000
    memory = 4096

    load {
      cpu {
        trace = "web-cpu"
        scale = 0.5
      }
      memory {
        scale = 0.5
      }
    }
  }
}
