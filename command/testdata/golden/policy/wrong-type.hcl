# want: headroom.cpu
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  headroom {
    cpu = "plenty"
  }
}
