# want: forecast.queries
# want: prometheus.address
# flags: -config testdata/golden/policy/files/agent.hcl
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
