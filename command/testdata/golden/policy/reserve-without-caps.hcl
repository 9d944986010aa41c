# want: reserve.max_memory
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  reserve {
    enabled = true
    max_cpu = 4000
  }
}
