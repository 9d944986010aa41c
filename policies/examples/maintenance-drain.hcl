# A maintenance drain.
#
# Storage nodes in dc2 are patched every Sunday at 04:00 Berlin time
# (02:00 UTC in summer, 03:00 UTC in winter) for three hours. The schedule tells the forecaster that their capacity disappears
# for the window, so foreshape reserves room for the displaced work
# beforehand and drains the nodes one at a time instead of discovering the
# gap when it opens.

shaping "storage-maintenance" {
  locality {
    datacenter = "dc2"
    node_pool  = "default"
    node_class = "storage"
  }

  forecast {
    horizon     = "6h"
    step        = "5m"
    history     = "14d"
    seasonality = ["7d"]
    quantile    = 0.95
  }

  headroom {
    cpu    = 20
    memory = 30
  }

  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "1h"
    ttl        = "6h"
    max_cpu    = 8000
    max_memory = 65536
  }

  migrate {
    # One node at a time: storage rebuilds are expensive.
    max_parallel = 1
    # drain: whole-node drains that honour each job's migrate block.
    strategy = "drain"

    priority {
      relieve_hotspot = 0
      critical        = 5
      age             = 1
    }
  }

  # Sunday 04:00 patch window, Berlin time the year round, for the
  # storage class in dc2: the forecaster treats these nodes as gone for
  # three hours. (Without time_zone the cron is read in UTC. A window
  # starting between 02:00 and 03:00 Berlin time would be skipped or
  # doubled on the days the clocks change, so this one starts at 04:00.)
  schedule "sunday-patch" {
    cron       = "0 4 * * 0"
    time_zone  = "Europe/Berlin"
    duration   = "3h"
    action     = "drain"
    localities = ["dc2/default/storage"]
  }
}
