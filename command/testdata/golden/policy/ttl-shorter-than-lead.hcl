# want: reserve.ttl
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  reserve {
    lead_time = "30m"
    ttl       = "10m"
  }
}
