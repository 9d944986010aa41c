# The default scenario: what `make dev` and `foreshape sim serve` run when no
# scenario is given. Three datacenters with 24 nodes, service and batch jobs
# whose demand follows bundled real traces (PlanetLab, NAB AWS CloudWatch,
# Google 2019 and Azure V2 aggregates; see traces/ATTRIBUTION.md) and a
# demand surge in dc2 three hours in. The web frontends and the edge mostly
# write to disk, the api and the etl batch mostly read (read_share).
name     = "default"
seed     = 42
start    = "2026-01-05T06:00:00Z"
duration = "12h"
tick     = "10s"
startup  = "5s"

scheduler {
  algorithm       = "binpack"
  preempt_service = false
  preempt_batch   = false
  preempt_system  = true
}

# Migration bandwidth of each network locality, MB/s, shared by the
# migrations that run in it at the same time.
datacenter "dc1" {
  bandwidth = 250
}

datacenter "dc2" {
  bandwidth = 125
}

datacenter "dc3" {
  bandwidth = 60
}

nodes "dc1-rack-a" {
  datacenter = "dc1"
  count      = 4
  node_class = "web"
  cpu        = 8000
  memory     = 16384
  iops       = 6000
  cores      = 4
  meta       = { rack = "a" }
}

nodes "dc1-rack-b" {
  datacenter = "dc1"
  count      = 4
  node_class = "web"
  cpu        = 8000
  memory     = 16384
  iops       = 6000
  cores      = 4
  meta       = { rack = "b" }
}

nodes "dc1-batch" {
  datacenter = "dc1"
  count      = 4
  node_pool  = "batch"
  node_class = "batch"
  cpu        = 16000
  memory     = 32768
  iops       = 10000
  cores      = 8
}

nodes "dc2-web" {
  datacenter = "dc2"
  count      = 6
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 3000
  cores      = 2
  meta       = { rack = "c" }
}

nodes "dc3-edge" {
  datacenter = "dc3"
  count      = 6
  node_class = "edge"
  cpu        = 4000
  memory     = 8192
  iops       = 2000
  cores      = 2
}

trace "planetlab-web" {
  file = "planetlab/20110303/ait05_us_es_princeton_codeen"
  unit = "percent"
}

trace "planetlab-edge" {
  file = "planetlab/20110303/kupl1_ittc_ku_edu_root"
  unit = "percent"
}

trace "asg-cpu" {
  file   = "nab/data/realAWSCloudwatch/grok_asg_anomaly.csv"
  column = "value"
  unit   = "percent"
}

trace "rds-cpu" {
  file   = "nab/data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv"
  column = "value"
  unit   = "percent"
}

trace "disk-writes" {
  file   = "nab/data/realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv"
  column = "value"
  unit   = "max"
}

trace "google-cpu" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_cpu"
  unit   = "fraction"
}

trace "google-mem" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_mem"
  unit   = "fraction"
}

trace "azure-mem" {
  file   = "datacenter/azure_v2/vm_cpu_readings_week1_aggregated_cpu_mem.csv"
  column = "assigned_mem"
  unit   = "max"
}

job "web" {
  type        = "service"
  priority    = 60
  datacenters = ["dc1", "dc2"]

  constraint {
    attribute = "node.class"
    value     = "web"
  }

  # Prefer dc1; dc2 takes the overflow.
  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 80
  }

  group "frontend" {
    count       = 12
    cpu         = 1000
    memory      = 1024
    iops        = 200
    replacement = "make_before_break"

    migrate {
      max_parallel = 2
    }

    load {
      jitter = "2h"
      cpu {
        trace = "planetlab-web"
        scale = 2.0
      }
      memory {
        trace = "google-mem"
        scale = 1.5
      }
      iops {
        trace      = "disk-writes"
        scale      = 8
        read_share = 0.25
      }
    }
  }
}

job "api" {
  type        = "service"
  priority    = 70
  datacenters = ["dc2"]

  constraint {
    attribute = "node.class"
    value     = "web"
  }

  group "api" {
    count  = 10
    cpu    = 1200
    memory = 2048
    iops   = 300

    load {
      jitter = "20m"
      cpu {
        trace = "asg-cpu"
        scale = 2.5
      }
      memory {
        trace = "google-mem"
        scale = 1.8
      }
      iops {
        trace      = "rds-cpu"
        scale      = 3
        read_share = 0.75
      }
    }
  }
}

job "cache" {
  type        = "service"
  priority    = 50
  datacenters = ["dc1", "dc2"]

  constraint {
    attribute = "node.class"
    value     = "web"
  }

  group "cache" {
    count       = 6
    cpu         = 500
    memory      = 4096
    replacement = "break_before_make"

    migrate {
      max_parallel = 1
    }

    load {
      cpu {
        trace = "rds-cpu"
        scale = 4
      }
      memory {
        trace = "azure-mem"
        scale = 0.9
      }
    }
  }
}

job "edge" {
  type        = "service"
  priority    = 55
  datacenters = ["dc3"]

  group "edge" {
    count  = 6
    cpu    = 1500
    memory = 2048
    iops   = 150

    load {
      jitter = "1h"
      cpu {
        trace = "planetlab-edge"
        scale = 2.2
      }
      memory {
        trace = "google-mem"
        scale = 1.2
      }
      iops {
        trace      = "disk-writes"
        scale      = 6
        read_share = 0.3
      }
    }
  }
}

job "etl" {
  type        = "batch"
  priority    = 40
  datacenters = ["dc1"]
  node_pool   = "batch"

  group "etl" {
    count   = 6
    cpu     = 4000
    memory  = 8192
    iops    = 1500
    run_for = "8h"

    load {
      jitter = "3h"
      cpu {
        trace = "google-cpu"
        scale = 1.6
      }
      memory {
        trace = "google-mem"
        scale = 2.2
      }
      iops {
        trace      = "disk-writes"
        scale      = 3
        read_share = 0.7
      }
    }
  }
}

job "reports" {
  type        = "batch"
  priority    = 30
  datacenters = ["dc1"]
  node_pool   = "batch"

  group "reports" {
    count   = 4
    cpu     = 2000
    memory  = 4096
    run_for = "90m"

    load {
      cpu {
        trace = "google-cpu"
        scale = 1.8
      }
    }
  }
}

job "node-agent" {
  type     = "system"
  priority = 80

  group "agent" {
    cpu    = 100
    memory = 128

    load {
      cpu {
        scale = 0.3
      }
      memory {
        scale = 0.6
      }
    }
  }
}

# Evening traffic in dc2: demand doubles for two hours.
event "dc2-surge" {
  kind       = "surge"
  at         = "3h"
  duration   = "2h"
  datacenter = "dc2"
  factor     = 2.0
}

# The maintenance of dc1's rack a (two hours in) is not an event here: the
# dev agent's policies declare it as a drain schedule, and foreshape
# carries it out.
