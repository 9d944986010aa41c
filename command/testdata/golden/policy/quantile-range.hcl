# want: forecast.quantile
# want: outside (0,1)
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    quantile = 1.5
  }
}
