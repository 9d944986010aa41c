# want: quantile
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    quantile = 
  }
}
