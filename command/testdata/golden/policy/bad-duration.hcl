# want: forecast.horizon
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    horizon = "1 hour"
  }
}
