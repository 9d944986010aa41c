# want: schedule.patch.localities[2]
# want: "dc2/*" is "dc2", listed already
# A drain that names a locality twice would plan its window twice, and add
# the work it moves out of dc2 twice to dc1's forecast.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "patch" {
    cron       = "0 2 * * 0"
    duration   = "3h"
    action     = "drain"
    localities = ["dc2", "dc3", "dc2/*"]
  }
}
