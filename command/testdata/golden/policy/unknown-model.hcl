# want: forecast.model
# want: prophet
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    model = "prophet"
  }
}
