# The cluster end-to-end test's policies: the two datacenters of the act
# scenario, each forecast and able to take the other's work. The test
# submits the migrations itself, so there is no schedule.

shaping "a" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    horizon = "30m"
    step    = "1m"
    history = "1d"
  }
  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    targets      = ["dc2"]
  }
}

shaping "b" {
  locality {
    datacenter = "dc2"
  }
  forecast {
    horizon = "30m"
    step    = "1m"
    history = "1d"
  }
  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    targets      = ["dc1"]
  }
}
