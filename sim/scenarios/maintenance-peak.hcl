# A maintenance drain into a locality with a daily peak.
#
# east is drained for maintenance four hours in (one hour to start every
# move); its api service (24 allocations, 6 GB each) must move to west,
# whose shop service climbs to its daily peak two to four hours later. west
# holds shop at its peak, and api at night, but not both: the moved work has
# to land on capacity that is there before the peak.
#
# Traces (bundled, see traces/ATTRIBUTION.md): shop's CPU follows the
# PlanetLab VM ait05_us_es_uw_oneswarm of 2011-03-03 (CoMon, Apache-2.0 via
# CloudSim), api's the flat kc-sce-plab2_umkc_edu rnp_dcc_ufjf of the same
# day; memory follows Google's 2019 cluster average (week 1, CC-BY-4.0).
#
# The days before the start (the history foreshape begins with) read
# another day of the same PlanetLab VMs, 2011-03-06, or the stand-in
# proof/holdout/README.md names where a VM was not measured that day (each
# trace's history; 2011-03-09 is held out of the bundled traces for the
# forecast evaluation's check); memory's week-long aggregate loops its week.
name     = "maintenance-peak"
seed     = 101
start    = "2026-03-03T00:00:00Z"
duration = "24h"
tick     = "10s"
startup  = "10s"

scheduler {
  algorithm = "spread"
}

datacenter "east" {
  bandwidth = 100
}

datacenter "west" {
  bandwidth = 100
}

nodes "east" {
  datacenter = "east"
  count      = 6
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 10000
  cores      = 8
}

nodes "west" {
  datacenter = "west"
  count      = 8
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 10000
  cores      = 8
}

trace "shop-cpu" {
  file    = "planetlab/20110303/ait05_us_es_uw_oneswarm"
  history = ["planetlab/20110306/freedom_informatik_rwth-aachen_de_uw_oneswarm"]
  unit    = "percent"
}

trace "api-cpu" {
  file    = "planetlab/20110303/kc-sce-plab2_umkc_edu_ rnp_dcc_ufjf"
  history = ["planetlab/20110306/kc-sce-plab2_umkc_edu_ rnp_dcc_ufjf"]
  unit    = "percent"
}

trace "mem" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_mem"
  unit   = "fraction"
}

job "shop" {
  datacenters = ["west"]
  group "shop" {
    count  = 40
    cpu    = 2000
    memory = 4096
    load {
      jitter = "30m"
      cpu {
        trace = "shop-cpu"
        scale = 1.9
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "api" {
  datacenters = ["east", "west"]
  affinity {
    attribute = "node.datacenter"
    value     = "east"
    weight    = 100
  }
  group "api" {
    count       = 24
    cpu         = 2000
    memory      = 6144
    replacement = "make_before_break"
    migrate {
      max_parallel = 6
    }
    load {
      jitter = "2h"
      cpu {
        trace = "api-cpu"
        scale = 2.2
      }
      memory {
        trace = "mem"
        scale = 1.3
      }
    }
  }
}

event "east-maintenance" {
  kind       = "drain"
  at         = "4h"
  datacenter = "east"
  deadline   = "1h"
  target     = "west"
}
