# want: reserve.priority
# want: reserve.max_cpu
# Caps and a priority for placeholders that reserve.enabled (false by default) never places.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  reserve {
    priority = 20
    max_cpu  = 8000
  }
}
