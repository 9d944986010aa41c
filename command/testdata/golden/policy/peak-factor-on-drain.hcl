# want: schedule.patch.factor
shaping "storage" {
  locality {
    datacenter = "dc2"
  }

  schedule "patch" {
    cron     = "0 2 * * 0"
    duration = "3h"
    action   = "drain"
    factor   = 1.5
  }
}
