shaping "web" {
  locality {
    datacenter = "dc1"
  }
  headroom {
    cpu = 120
  }
}
