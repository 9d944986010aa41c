# want: migrate.strategy
# want: teleport
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  migrate {
    strategy = "teleport"
  }
}
