# want: schedule.surge.localities[0]
# A peak lifts only its own policy's forecast: dc2's surge belongs in dc2's policy.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "surge" {
    cron       = "0 9 * * *"
    duration   = "2h"
    action     = "peak"
    localities = ["dc2"]
    factor     = 2
  }
}
