# Policies for `foreshape agent -dev`: they shape the localities of the
# simulator's default scenario (three datacenters; a demand surge in dc2
# three hours in; a maintenance drain of one dc1 rack six hours in).

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
    iops   = 20
  }
  schedule "rack-a-maintenance" {
    cron     = "0 12 * * *"
    duration = "1h"
    action   = "drain"
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
