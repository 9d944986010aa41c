# want: forecast.queries
# want: The key "conns" is written twice
# HCL alone keeps the later of two values of one key: the first query would
# be dropped without a word.
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    queries = {
      conns = "sum(conns{ {{.Matchers}} })"
      conns = "sum(connections{ {{.Matchers}} })"
    }
  }
}
