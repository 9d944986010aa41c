# The one policy of the web scenario (web.hcl): dc1, forecast as the dev
# policies forecast, with a scale block on the web job as the dev
# policies have on the api job, so that a test of what the leader exports
# also covers a policy that scales.
shaping "dc1-web" {
  locality {
    datacenter = "dc1"
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
  scale "web" {
    min      = 2
    max      = 4
    cooldown = "30m"
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
}
