# want: schedule.patch.cron
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "patch" {
    cron     = "0 25 * * *"
    duration = "1h"
    action   = "drain"
  }
}
