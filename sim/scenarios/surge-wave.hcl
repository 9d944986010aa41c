# A demand surge during a migration wave.
#
# The orders service leaves the old datacenter for new, one allocation every
# eight minutes from the first hour (each to start within the hour), while a
# sale, announced ahead, lifts web's traffic in new by 60% for three hours
# from 2h30. new carries web through the sale, but not web and all of orders.
#
# Traces (bundled, see traces/ATTRIBUTION.md): web's CPU follows the
# PlanetLab VM fobos_cecalc_ula_ve_uw_oneswarm of 2011-03-03, orders' the
# VM csplanetlab2_kaist_ac_kr_uw_oneswarm (CoMon, Apache-2.0 via CloudSim);
# memory follows Google's 2019 cluster average (week 1, CC-BY-4.0).
#
# The days before the start (the history foreshape begins with) read
# another day of the same PlanetLab VMs, 2011-03-06, or the stand-in
# proof/holdout/README.md names where a VM was not measured that day (each
# trace's history; 2011-03-09 is held out of the bundled traces for the
# forecast evaluation's check); memory's week-long aggregate loops its week.
name     = "surge-wave"
seed     = 202
start    = "2026-03-03T00:00:00Z"
duration = "12h"
tick     = "10s"
startup  = "10s"

scheduler {
  algorithm = "spread"
}

datacenter "old" {
  bandwidth = 150
}

datacenter "new" {
  bandwidth = 150
}

nodes "old" {
  datacenter = "old"
  count      = 6
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 10000
  cores      = 8
}

nodes "new" {
  datacenter = "new"
  count      = 8
  node_class = "general"
  cpu        = 16000
  memory     = 65536
  iops       = 10000
  cores      = 8
}

trace "web-cpu" {
  file    = "planetlab/20110303/fobos_cecalc_ula_ve_uw_oneswarm"
  history = ["planetlab/20110306/fobos_cecalc_ula_ve_uw_oneswarm"]
  unit    = "percent"
}

trace "orders-cpu" {
  file    = "planetlab/20110303/csplanetlab2_kaist_ac_kr_uw_oneswarm"
  history = ["planetlab/20110306/planetlab2_itwm_fhg_de_uw_oneswarm"]
  unit    = "percent"
}

trace "mem" {
  file   = "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv"
  column = "avg_mem"
  unit   = "fraction"
}

job "web" {
  datacenters = ["new"]
  group "web" {
    count  = 32
    cpu    = 2000
    memory = 4096
    load {
      jitter = "30m"
      cpu {
        trace = "web-cpu"
        scale = 3.0
      }
      memory {
        trace = "mem"
        scale = 1.2
      }
    }
  }
}

job "orders" {
  datacenters = ["old", "new"]
  affinity {
    attribute = "node.datacenter"
    value     = "old"
    weight    = 100
  }
  group "orders" {
    count       = 18
    cpu         = 2000
    memory      = 4096
    replacement = "make_before_break"
    load {
      jitter = "1h"
      cpu {
        trace = "orders-cpu"
        scale = 1.5
      }
      memory {
        trace = "mem"
        scale = 1.3
      }
    }
  }
}

# orders moves from old to new, one allocation every 8 minutes.
migration "orders-to-new" {
  at       = "1h"
  every    = "8m"
  job      = "orders"
  group    = "orders"
  from     = "old"
  to       = "new"
  count    = 18
  deadline = "1h"
}

# A sale, announced ahead: web's traffic in new rises by 60% for 3 hours.
event "sale" {
  kind       = "surge"
  at         = "2h30m"
  duration   = "3h"
  datacenter = "new"
  factor     = 1.6
  announced  = true
}
