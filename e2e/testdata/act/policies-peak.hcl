# The FCFS comparison, foreshape's side: A's maintenance at 09:00 queues
# its work two hours ahead, as B's daily peak (07:00-08:00) begins; B holds
# room for it and knows its own peak. policies-peak-fcfs.hcl is the same
# with the queue first come, first served.

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
    lead_time    = "2h"
    targets      = ["dc2"]
  }
  schedule "maintenance" {
    cron     = "0 9 * * *"
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
    cron     = "0 7 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 2.15
  }
}
