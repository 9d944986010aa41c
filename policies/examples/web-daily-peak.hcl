# A web tier with a daily peak.
#
# The web node class in dc1 sees traffic climb every weekday morning. This
# policy forecasts it an hour ahead on a five-minute grid, keeps 25% CPU and
# memory free at the 90th percentile, holds capacity for incoming
# migrations before they start, and scales the web job early when a
# reservation would not fit. The morning ramp is also declared as a known
# peak so the forecaster does not have to learn it late.

shaping "web-daily-peak" {
  # Which capacity this policy shapes: nodes of class "web" in dc1, in any
  # node pool. An omitted field (or "*") matches anything.
  locality {
    datacenter = "dc1"
    node_class = "web"
  }

  forecast {
    # "auto" backtests every model per series and keeps the best; name one
    # of naive, seasonal-naive, ets, arima, theta or mstl to force it.
    model = "auto"
    # How far ahead to forecast, on which grid, from how much history.
    # Horizon, history and every season are whole multiples of step. The
    # series store keeps 1-minute points for a day, 5-minute points for 14
    # days and hourly points for 90 days: two weeks of history (a weekly
    # season seen twice) need a step that is a multiple of 5m.
    horizon = "1h"
    step    = "5m"
    history = "14d"
    # Daily and weekly seasons; "auto" lets the engine detect them.
    seasonality = ["1d", "7d"]
    # Headroom is kept at this quantile of the forecast, in (0,1).
    quantile = 0.9
  }

  # Percent of CPU and memory kept free at the planning quantile, in [0,100)
  # (IOPS is forecast, but Nomad reports no IOPS capacity to keep free).
  headroom {
    cpu    = 25
    memory = 25
  }

  # Placeholder reservations: low-priority Nomad jobs that hold capacity in
  # this locality ahead of migrations and are handed over when they land.
  reserve {
    enabled = true
    # At least 10 below the priority of the jobs it holds room for: Nomad
    # preempts only across that gap. For a job closer than that the agent
    # moves without a reservation and says why. Nomad preempts for service
    # and batch jobs only when its scheduler configuration enables it (off
    # by default): until then a placeholder's room is not given to another
    # job; foreshape hands it over when the move lands, or ttl releases it.
    priority = 20
    # Place reservations this long before the forecast need.
    lead_time = "20m"
    # Release a reservation nothing claimed after this long.
    ttl = "2h"
    # Caps on everything this policy holds at once: MHz and MB.
    max_cpu    = 16000
    max_memory = 32768
  }

  # Scale the web job's "frontend" group when demand is forecast to exceed
  # what reservations can free.
  scale "frontend" {
    min      = 3
    max      = 24
    cooldown = "10m"

    target "nomad-job" {
      job       = "web"
      group     = "frontend"
      namespace = "default"
      region    = "global"
    }
  }

  migrate {
    # Safety floor: never more than this many migrations at once here.
    max_parallel = 3
    # reschedule: stop the allocation and let Nomad place it where the
    # released reservation made room.
    strategy = "reschedule"

    # Weights of the queue's order (zero or more, at least one positive).
    priority {
      relieve_hotspot = 4
      critical        = 3
      age             = 1
    }
  }

  # Weekday mornings 08:00-10:00 UTC are a known peak for the web tier.
  schedule "morning-ramp" {
    cron       = "0 8 * * 1-5"
    duration   = "2h"
    action     = "peak"
    localities = ["dc1/*/web"]
    # Demand during the window is this multiple of the demand before it;
    # omit it to learn the multiple from past mornings in the history. Once
    # a window has run seven points, the forecast follows what it shows.
    factor = 1.5
  }
}
