# want: Unsupported argument forecast.modle
# want: modle
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    modle = "auto"
  }
}
