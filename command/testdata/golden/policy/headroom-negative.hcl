# want: headroom.memory
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  headroom {
    memory = -5
  }
}
