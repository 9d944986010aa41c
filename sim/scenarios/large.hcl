# One thousand nodes: the harness at scale.
#
# Four datacenters of 250 nodes and 5,000 allocations. Rack a of dc1 (50
# nodes, 250 frontends) is drained into dc2 three hours in, as dc2 climbs to
# its daily peak; dc3 is retired and 240 search allocations move to dc4
# (200 MB/s), four a minute from two hours in. Controllers read utilisation
# every five minutes (observe_every) and act every minute.
#
# Traces (bundled, see traces/ATTRIBUTION.md): PlanetLab VMs of 2011-03-03
# (CoMon, Apache-2.0 via CloudSim): the peaking services follow
# ait05_us_es_uw_oneswarm, the busy ones jupiter_cs_brown_edu_uw_oneswarm,
# the movable ones kc-sce-plab2_umkc_edu rnp_dcc_ufjf; memory follows
# Google's 2019 cluster average (week 1, CC-BY-4.0).
#
# The days before the start (the history foreshape begins with) read
# another day of the same PlanetLab VMs, 2011-03-06, or the stand-in
# proof/holdout/README.md names where a VM was not measured that day (each
# trace's history; 2011-03-09 is held out of the bundled traces for the
# forecast evaluation's check); memory's week-long aggregate loops its week.
name                       = "large"
seed                       = 505
start                      = "2026-03-03T00:00:00Z"
duration                   = "24h"
tick                       = "30s"
startup                    = "10s"
publish_allocation_metrics = false
observe_every              = "5m"

scheduler {
  algorithm = "spread"
}

datacenter "dc1" {
  bandwidth = 1000
}

datacenter "dc2" {
  bandwidth = 1000
}

datacenter "dc3" {
  bandwidth = 400
}

datacenter "dc4" {
  bandwidth = 200
}

nodes "dc1-a" {
  datacenter = "dc1"
  count      = 50
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

nodes "dc1-b" {
  datacenter = "dc1"
  count      = 200
  node_class = "batch"
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

nodes "dc2" {
  datacenter = "dc2"
  count      = 250
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

nodes "dc3" {
  datacenter = "dc3"
  count      = 250
  node_class = "search"
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

nodes "dc4" {
  datacenter = "dc4"
  count      = 250
  node_class = "search"
  cpu        = 16000
  memory     = 65536
  cores      = 8
}

trace "peak-cpu" {
  file    = "planetlab/20110303/ait05_us_es_uw_oneswarm"
  history = ["planetlab/20110306/freedom_informatik_rwth-aachen_de_uw_oneswarm"]
  unit    = "percent"
}

trace "flat-cpu" {
  file    = "planetlab/20110303/kc-sce-plab2_umkc_edu_ rnp_dcc_ufjf"
  history = ["planetlab/20110306/kc-sce-plab2_umkc_edu_ rnp_dcc_ufjf"]
  unit    = "percent"
}

trace "busy-cpu" {
  file    = "planetlab/20110303/jupiter_cs_brown_edu_uw_oneswarm"
  history = ["planetlab/20110306/planetlab1_cse_msu_edu_uw_oneswarm"]
  unit    = "percent"
}

trace "mem" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_mem"
  unit   = "fraction"
}

job "dc2-svc" {
  datacenters = ["dc2"]
  constraint {
    attribute = "node.class"
    value     = "general"
  }

  group "dc2-svc" {
    count  = 1250
    cpu    = 2000
    memory = 4096
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "30m"
      cpu {
        trace = "peak-cpu"
        scale = 2.15
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "dc4-svc" {
  datacenters = ["dc4"]
  constraint {
    attribute = "node.class"
    value     = "search"
  }

  group "dc4-svc" {
    count  = 1250
    cpu    = 2000
    memory = 4096
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "30m"
      cpu {
        trace = "peak-cpu"
        scale = 2.15
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "batch-svc" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.class"
    value     = "batch"
  }

  group "batch-svc" {
    count  = 1000
    cpu    = 2000
    memory = 4096
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "2h"
      cpu {
        trace = "busy-cpu"
        scale = 1.5
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "dc3-svc" {
  datacenters = ["dc3"]
  constraint {
    attribute = "node.class"
    value     = "search"
  }

  group "dc3-svc" {
    count  = 850
    cpu    = 2000
    memory = 4096
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "2h"
      cpu {
        trace = "busy-cpu"
        scale = 1.5
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "frontend" {
  datacenters = ["dc1", "dc2"]
  constraint {
    attribute = "node.class"
    value     = "general"
  }

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "frontend" {
    count       = 250
    cpu         = 2000
    memory      = 4096
    replacement = "make_before_break"
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "2h"
      cpu {
        trace = "flat-cpu"
        scale = 2.2
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "search" {
  datacenters = ["dc3", "dc4"]
  constraint {
    attribute = "node.class"
    value     = "search"
  }

  affinity {
    attribute = "node.datacenter"
    value     = "dc3"
    weight    = 100
  }

  group "search" {
    count       = 400
    cpu         = 2000
    memory      = 4096
    replacement = "make_before_break"
    migrate {
      max_parallel = 10
    }
    load {
      jitter = "2h"
      cpu {
        trace = "flat-cpu"
        scale = 2.2
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

# Rack a of dc1 goes into maintenance three hours in: its frontends move to dc2.
event "dc1-rack-a" {
  kind       = "drain"
  at         = "3h"
  datacenter = "dc1"
  node       = "dc1-a-*"
  deadline   = "1h"
  target     = "dc2"
}

# dc3 is retired: 240 search allocations move to dc4, four a minute.
migration "search-to-dc4" {
  at       = "2h"
  every    = "15s"
  job      = "search"
  from     = "dc3"
  to       = "dc4"
  count    = 240
  deadline = "1h"
}
