# The FCFS baseline of the act e2e: the same maintenance and caps as
# policies-peak.hcl, with the queue first come, first served: no
# placeholders, the order by age alone, and no forecast of B's peak to wait
# on.

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
    priority {
      relieve_hotspot = 0
      critical        = 0
      age             = 1
    }
  }
  schedule "maintenance" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "drain"
  }
}
