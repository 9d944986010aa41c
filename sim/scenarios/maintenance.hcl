# Maintenance under tight bandwidth: two racks of dc1 are drained one after
# the other while dc1's network is narrow, so migrations that run together
# slow each other down. A scenario for comparing migration ordering and
# per-locality throttling policies. Bundled traces only.
name     = "maintenance"
seed     = 11
start    = "2026-02-02T08:00:00Z"
duration = "8h"
tick     = "10s"
startup  = "10s"

datacenter "dc1" {
  bandwidth = 40
}

datacenter "dc2" {
  bandwidth = 80
}

nodes "dc1-rack-a" {
  datacenter = "dc1"
  count      = 5
  node_class = "app"
  cpu        = 8000
  memory     = 32768
  iops       = 5000
  cores      = 4
  meta       = { rack = "a" }
}

nodes "dc1-rack-b" {
  datacenter = "dc1"
  count      = 5
  node_class = "app"
  cpu        = 8000
  memory     = 32768
  iops       = 5000
  cores      = 4
  meta       = { rack = "b" }
}

nodes "dc2-app" {
  datacenter = "dc2"
  count      = 6
  node_class = "app"
  cpu        = 8000
  memory     = 32768
  iops       = 5000
  cores      = 4
}

trace "session-cpu" {
  file = "planetlab/20110303/jupiter_cs_brown_edu_uw_oneswarm"
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

trace "writes" {
  file   = "nab/data/realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv"
  column = "value"
  unit   = "max"
}

# Large in-memory sessions: slow to move.
job "sessions" {
  priority    = 60
  datacenters = ["dc1", "dc2"]

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "sessions" {
    count       = 16
    cpu         = 1500
    memory      = 6144
    iops        = 200
    replacement = "make_before_break"

    migrate {
      max_parallel = 4
    }

    load {
      jitter = "3h"
      cpu {
        trace = "session-cpu"
        scale = 1.6
      }
      memory {
        trace = "mem"
        scale = 2.4
      }
      iops {
        trace = "writes"
        scale = 5
      }
    }
  }
}

job "db" {
  priority    = 75
  datacenters = ["dc1", "dc2"]

  group "db" {
    count       = 6
    cpu         = 2000
    memory      = 8192
    iops        = 1500
    replacement = "break_before_make"

    constraint {
      operator = "distinct_hosts"
    }

    migrate {
      max_parallel = 1
    }

    load {
      cpu {
        trace = "db-cpu"
        scale = 5
      }
      memory {
        scale = 0.85
      }
      iops {
        trace = "writes"
        scale = 12
      }
    }
  }
}

event "rack-a" {
  kind       = "drain"
  at         = "2h"
  datacenter = "dc1"
  node       = "dc1-rack-a-*"
  deadline   = "1h"
}

event "rack-b" {
  kind       = "drain"
  at         = "5h"
  datacenter = "dc1"
  node       = "dc1-rack-b-*"
  deadline   = "1h"
}
