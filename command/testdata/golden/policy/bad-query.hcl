# want: forecast.queries.cpu
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  forecast {
    queries = {
      queue_depth = "sum(queue_depth{ {{.Matchers}} })"
      cpu         = "sum(rate(node_cpu_seconds_total{ {{.Matchers}} }[5m]))"
    }
  }
}
