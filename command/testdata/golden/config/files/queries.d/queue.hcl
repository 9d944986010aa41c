shaping "queue" {
  locality {
    datacenter = "dc2"
  }
  forecast {
    queries = {
      queue_depth = "sum(queue_depth{ {{.Matchers}} })"
    }
  }
}
