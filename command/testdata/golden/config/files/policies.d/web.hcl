shaping "web" {
  locality {
    datacenter = "dc1"
  }
}
