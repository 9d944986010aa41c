# want: schedule.sale.action
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  schedule "sale" {
    cron     = "0 9 * * 5"
    duration = "4h"
    action   = "surge"
  }
}
