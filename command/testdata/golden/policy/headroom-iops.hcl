# want: headroom.iops
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  headroom {
    cpu  = 20
    iops = 20
  }
}
