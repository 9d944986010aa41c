# The crash soak's policies: the act scenario's maintenance of A (dc1) at
# 07:00, shortened to 30 minutes so that a run sees the window end and
# A's nodes made eligible again by 07:30; B (dc2) holds room for the
# moved work with placeholders and knows its own peak.

shaping "a" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    lead_time    = "20m"
    targets      = ["dc2"]
  }
  schedule "maintenance" {
    cron     = "0 7 * * *"
    duration = "30m"
    action   = "drain"
  }
}

shaping "b" {
  locality {
    datacenter = "dc2"
  }
  forecast {
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  headroom {
    cpu    = 15
    memory = 15
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "2h"
    max_cpu    = 24000
    max_memory = 49152
  }
  migrate {
    max_parallel = 2
  }
  schedule "daily-peak" {
    cron     = "30 6 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 1.6
  }
}
