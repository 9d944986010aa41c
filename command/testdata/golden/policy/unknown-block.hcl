# want: Unsupported block type
# want: autoscale
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  autoscale {
    max = 3
  }
}
