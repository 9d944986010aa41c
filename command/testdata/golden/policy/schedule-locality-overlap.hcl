# want: schedule.patch.localities[2]
# want: "*/*/batch" and "dc2/web", listed already, overlap
# want: the nodes of dc2/web/batch are in both
# A drain that names two localities sharing nodes, neither within the
# other, would drain the nodes of dc2/web/batch twice and add the work it
# moves out of them twice to dc1's forecast.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "patch" {
    cron       = "0 2 * * 0"
    duration   = "3h"
    action     = "drain"
    localities = ["dc2/web", "dc3", "*/*/batch"]
  }
}
