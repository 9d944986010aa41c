# want: headroom.memory
# want: [0,100)
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  headroom {
    memory = 120
  }
}
