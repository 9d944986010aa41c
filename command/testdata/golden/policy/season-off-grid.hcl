# want: forecast.seasonality[1]
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    step        = "5m"
    history     = "14d"
    seasonality = ["1d", "7m"]
  }
}
