# want: forecast.step
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    horizon = "1h"
    step    = "30s"
  }
}
