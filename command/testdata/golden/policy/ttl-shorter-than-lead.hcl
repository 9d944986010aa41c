# want: reserve.ttl
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  reserve {
    enabled    = true
    lead_time  = "30m"
    ttl        = "10m"
    max_cpu    = 8000
    max_memory = 16384
  }
}
