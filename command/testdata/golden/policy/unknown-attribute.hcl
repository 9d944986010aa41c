# want: Unsupported argument
# want: modle
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    modle = "auto"
  }
}
