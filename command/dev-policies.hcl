# Policies for `foreshape agent -dev`: they shape the localities of the
# simulator's default scenario (three datacenters; a demand surge in dc2
# three hours in). foreshape itself carries out the maintenance of dc1's
# rack a two hours in: it queues the rack's allocations twenty minutes
# ahead, reserves room for them on the rest of dc1's web nodes, and moves
# them in score order, one at a time, before the window opens.

shaping "dc1-web" {
  locality {
    datacenter = "dc1"
    node_class = "web"
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  headroom {
    cpu    = 25
    memory = 25
  }
  # Placeholders hold room for the rack's allocations before they move.
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 16000
    max_memory = 32768
  }
  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    lead_time    = "20m"
  }
  # Rack a goes down for an hour at 08:00 (two hours into the scenario).
  schedule "rack-a-maintenance" {
    cron     = "0 8 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-rack-a-*"
  }
}

shaping "dc2-web" {
  locality {
    datacenter = "dc2"
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  headroom {
    cpu    = 25
    memory = 25
  }
  # Ahead of a forecast hotspot the api service scales out.
  scale "api" {
    min      = 10
    max      = 16
    cooldown = "30m"
    target "nomad-job" {
      job   = "api"
      group = "api"
    }
  }
  # The surge is known ahead of time: demand doubles for two hours.
  schedule "surge" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 2
  }
}

shaping "dc1-batch" {
  locality {
    datacenter = "dc1"
    node_pool  = "batch"
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  headroom {
    cpu    = 15
    memory = 15
  }
}

shaping "dc3-edge" {
  locality {
    datacenter = "dc3"
  }
  forecast {
    model    = "auto"
    horizon  = "1h"
    step     = "1m"
    history  = "1d"
    quantile = 0.9
  }
  headroom {
    cpu    = 20
    memory = 20
  }
}
