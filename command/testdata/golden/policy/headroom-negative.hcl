# want: headroom.iops
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  headroom {
    iops = -5
  }
}
