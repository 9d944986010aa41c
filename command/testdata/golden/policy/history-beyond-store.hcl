# want: forecast.history
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    step    = "1m"
    history = "14d"
  }
}
