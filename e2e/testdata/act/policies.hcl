# A's maintenance at 07:00 moves its work to B ahead of the window; B
# holds room for it with placeholders and knows its own peak.

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
    duration = "2h"
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
