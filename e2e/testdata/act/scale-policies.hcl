# A's maintenance at 07:00; B cannot hold room for A's work, so it scales
# its local service through the nomad-job target, with a 30-minute cooldown.

shaping "a" {
  locality {
    datacenter = "dc1"
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
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "2h"
    max_cpu    = 16000
    max_memory = 32768
  }
  scale "local" {
    min      = 1
    max      = 10
    cooldown = "30m"
    target "nomad-job" {
      job   = "local"
      group = "local"
    }
  }
}
