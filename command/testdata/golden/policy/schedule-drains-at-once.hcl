# want: schedule.batch.localities[0]
# want: Schedules "batch" and "maintenance" (testdata/golden/policy/schedule-drains-at-once.hcl:12,3-25) both drain the nodes of dc2/*/batch
# want: "maintenance"'s of Sat 2000-01-01 08:00–10:00 UTC and "batch"'s of 09:00–10:00 UTC
# Two drains of one policy take the nodes of dc2/*/batch in windows that
# overlap (09:00 to 10:00 each day): one of the two would drain them for
# the other.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "maintenance" {
    cron       = "0 8 * * *"
    duration   = "2h"
    action     = "drain"
    localities = ["dc2"]
  }

  schedule "batch" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2/*/batch"]
  }
}
