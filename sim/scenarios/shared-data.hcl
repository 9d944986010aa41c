# A larger scenario over the full shared trace set: run it with
#   foreshape sim serve -scenario sim/scenarios/shared-data.hcl -data ../shared/data
# (the trace files below are not bundled). Four datacenters, 72 nodes, jobs
# bound to NAB, PlanetLab (two days), BitBrains and Google 2019 week 2.
name     = "shared-data"
seed     = 2026
start    = "2026-03-09T00:00:00Z"
duration = "48h"
tick     = "10s"

datacenter "east" {
  bandwidth = 250
}

datacenter "west" {
  bandwidth = 250
}

datacenter "north" {
  bandwidth = 100
}

datacenter "edge" {
  bandwidth = 40
}

nodes "east" {
  datacenter = "east"
  count      = 24
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 12000
  cores      = 8
}

nodes "west" {
  datacenter = "west"
  count      = 24
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 12000
  cores      = 8
}

nodes "north" {
  datacenter = "north"
  count      = 12
  node_pool  = "batch"
  node_class = "batch"
  cpu        = 32000
  memory     = 131072
  iops       = 20000
  cores      = 16
}

nodes "edge" {
  datacenter = "edge"
  count      = 12
  node_class = "edge"
  cpu        = 4000
  memory     = 8192
  iops       = 2000
  cores      = 2
}

trace "elb" {
  file   = "nab/data/realAWSCloudwatch/elb_request_count_8c0756.csv"
  column = "value"
  unit   = "max"
}

trace "ec2-a" {
  file   = "nab/data/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv"
  column = "value"
  unit   = "percent"
}

trace "ec2-b" {
  file   = "nab/data/realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv"
  column = "value"
  unit   = "percent"
}

trace "planetlab-day2" {
  file = "planetlab/20110306/146-179_surfsnel_dsl_internl_net_root"
  unit = "percent"
}

trace "bitbrains-cpu" {
  file   = "bitbrains_rnd/2013-8/134.csv"
  column = "CPU usage [%]"
  unit   = "max"
}

trace "bitbrains-disk" {
  file   = "bitbrains_rnd/2013-8/134.csv"
  column = "Disk write throughput [KB/s]"
  unit   = "max"
}

trace "google-cpu-w2" {
  file   = "datacenter_aggregates/google2019/week2/instance_usage_grouped_300_seconds_week_2.csv"
  column = "avg_cpu"
  unit   = "fraction"
}

trace "google-mem-w2" {
  file   = "datacenter_aggregates/google2019/week2/instance_usage_grouped_300_seconds_week_2.csv"
  column = "avg_mem"
  unit   = "fraction"
}

job "frontend" {
  priority    = 70
  datacenters = ["east", "west"]

  group "web" {
    count       = 120
    cpu         = 1000
    memory      = 2048
    iops        = 150
    replacement = "make_before_break"

    migrate {
      max_parallel = 6
    }

    load {
      jitter = "1h"
      cpu {
        trace = "elb"
        scale = 1.4
      }
      memory {
        trace = "google-mem-w2"
        scale = 1.6
      }
      iops {
        trace = "bitbrains-disk"
        scale = 3
      }
    }
  }
}

job "services" {
  priority    = 60
  datacenters = ["east", "west"]

  group "svc" {
    count  = 160
    cpu    = 1500
    memory = 4096
    iops   = 300

    migrate {
      max_parallel = 8
    }

    load {
      jitter = "6h"
      cpu {
        trace = "ec2-a"
        scale = 2.5
      }
      memory {
        trace = "google-mem-w2"
        scale = 1.8
      }
      iops {
        trace = "bitbrains-disk"
        scale = 4
      }
    }
  }

  group "workers" {
    count  = 80
    cpu    = 2000
    memory = 4096

    load {
      jitter = "12h"
      cpu {
        trace = "bitbrains-cpu"
        scale = 1.2
      }
    }
  }
}

job "analytics" {
  type        = "batch"
  priority    = 40
  datacenters = ["north"]
  node_pool   = "batch"

  group "spark" {
    count   = 40
    cpu     = 6000
    memory  = 24576
    iops    = 2000
    run_for = "20h"

    load {
      jitter = "4h"
      cpu {
        trace = "google-cpu-w2"
        scale = 1.5
      }
      memory {
        trace = "google-mem-w2"
        scale = 2.5
      }
    }
  }
}

job "edge" {
  priority    = 55
  datacenters = ["edge"]

  group "cdn" {
    count = 24
    cpu   = 1200
    memory = 2048

    load {
      jitter = "2h"
      cpu {
        trace = "planetlab-day2"
        scale = 2.2
      }
      memory {
        scale = 0.7
      }
    }
  }
}

event "west-evening" {
  kind       = "surge"
  at         = "19h"
  duration   = "3h"
  datacenter = "west"
  factor     = 1.7
}

event "east-maintenance" {
  kind       = "drain"
  at         = "30h"
  datacenter = "east"
  node       = "east-1*"
  deadline   = "2h"
}

event "edge-node-loss" {
  kind = "node_down"
  at   = "36h"
  node = "edge-3"
}
