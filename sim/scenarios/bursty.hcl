# Hard to forecast: bursts and a level shift.
#
# Datacenter b runs a database whose CPU shifts to 2.4 times its level five
# and a half hours in, a service with sudden bursts (several times its level
# for tens of minutes) and an autoscaling group with anomalies. a is drained
# six hours in and its workers move to b. Nothing in b's history announces
# the shift or the bursts, so forecasts are wrong when it matters: this
# scenario shows how foreshape degrades.
#
# Traces (bundled, see traces/ATTRIBUTION.md): NAB realAWSCloudwatch (MIT):
# the database follows rds_cpu_utilization_cc0c53 from its day 10 (the level
# shift), the bursts ec2_cpu_utilization_fe7f93 from its day 7, the group
# grok_asg_anomaly from its day 3, the workers ec2_cpu_utilization_53ea38;
# memory follows the Azure 2019 V2 assigned-memory aggregate (week 1,
# CC-BY-4.0).
name     = "bursty"
seed     = 404
start    = "2026-03-03T00:00:00Z"
duration = "12h"
tick     = "10s"
startup  = "10s"

scheduler {
  algorithm = "spread"
}

datacenter "a" {
  bandwidth = 120
}

datacenter "b" {
  bandwidth = 120
}

nodes "a" {
  datacenter = "a"
  count      = 5
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

nodes "b" {
  datacenter = "b"
  count      = 10
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

trace "db-cpu" {
  file   = "nab/data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv"
  column = "value"
  unit   = "max"
}

trace "burst-cpu" {
  file   = "nab/data/realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv"
  column = "value"
  unit   = "percent"
}

trace "asg-cpu" {
  file   = "nab/data/realAWSCloudwatch/grok_asg_anomaly.csv"
  column = "value"
  unit   = "percent"
}

trace "worker-cpu" {
  file   = "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv"
  column = "value"
  unit   = "max"
}

trace "mem" {
  file   = "datacenter/azure_v2/vm_cpu_readings_week1_aggregated_cpu_mem.csv"
  column = "assigned_mem"
  unit   = "max"
}

# db's CPU shifts to 2.4 times its level five hours in (the trace's day 10).
job "db" {
  datacenters = ["b"]
  group "db" {
    count  = 12
    cpu    = 3000
    memory = 8192
    load {
      jitter = "10m"
      cpu {
        trace  = "db-cpu"
        scale  = 2.3
        offset = "251h"
      }
      memory {
        trace = "mem"
        scale = 0.8
      }
    }
  }
}

job "burst" {
  datacenters = ["b"]
  group "burst" {
    count  = 16
    cpu    = 1500
    memory = 2048
    load {
      jitter = "20m"
      cpu {
        trace  = "burst-cpu"
        scale  = 2
        offset = "168h"
      }
      memory {
        trace = "mem"
        scale = 0.8
      }
    }
  }
}

job "asg" {
  datacenters = ["b"]
  group "asg" {
    count  = 16
    cpu    = 1500
    memory = 2048
    load {
      jitter = "30m"
      cpu {
        trace  = "asg-cpu"
        scale  = 5.5
        offset = "72h"
      }
      memory {
        trace = "mem"
        scale = 0.8
      }
    }
  }
}

job "workers" {
  datacenters = ["a", "b"]
  affinity {
    attribute = "node.datacenter"
    value     = "a"
    weight    = 100
  }
  group "workers" {
    count       = 20
    cpu         = 2000
    memory      = 4096
    replacement = "make_before_break"
    migrate {
      max_parallel = 4
    }
    load {
      jitter = "1h"
      cpu {
        trace = "worker-cpu"
        scale = 0.8
      }
      memory {
        trace = "mem"
        scale = 0.8
      }
    }
  }
}

event "a-maintenance" {
  kind       = "drain"
  at         = "6h"
  datacenter = "a"
  deadline   = "1h"
  target     = "b"
}
