# The act half's end-to-end scenario: datacenter A (dc1) goes down for
# maintenance at 07:00, an hour in, while datacenter B (dc2) climbs to its
# daily peak around the same time. The app and db services run in A
# (they prefer it) and may run in B; B's own service follows a real trace
# lifted by the peak. Bundled traces only.
name      = "act-e2e"
seed      = 5
start     = "2026-01-05T06:00:00Z"
duration  = "4h"
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
  count      = 3
  node_class = "app"
  cpu        = 8000
  memory     = 16384
  iops       = 5000
  cores      = 4
}

nodes "b" {
  datacenter = "dc2"
  count      = 3
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

trace "db-cpu" {
  file   = "nab/data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv"
  column = "value"
  unit   = "percent"
}

trace "mem" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_mem"
  unit   = "fraction"
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
    count       = 6
    cpu         = 1000
    memory      = 2048
    replacement = "make_before_break"

    load {
      jitter = "1h"
      cpu {
        trace = "web-cpu"
        scale = 1.2
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "db" {
  type        = "service"
  priority    = 80
  datacenters = ["dc1", "dc2"]

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "db" {
    count       = 2
    cpu         = 1500
    memory      = 4096
    replacement = "break_before_make"

    load {
      cpu {
        trace = "db-cpu"
        scale = 1.5
      }
      memory {
        scale = 0.8
      }
    }
  }
}

job "local" {
  type        = "service"
  priority    = 50
  datacenters = ["dc2"]

  group "local" {
    count  = 3
    cpu    = 4000
    memory = 6144

    load {
      jitter = "30m"
      cpu {
        trace = "web-cpu"
        scale = 3.0
      }
      memory {
        trace = "mem"
        scale = 1.5
      }
    }
  }
}

# B's daily peak: demand climbs by 60% from 06:30 for two hours.
event "b-peak" {
  kind       = "surge"
  at         = "30m"
  duration   = "2h"
  datacenter = "dc2"
  factor     = 1.6
}
