# want: forecast_only
# want: queue.max_requests
# want: reserve.driver
# A client agent plans and moves nothing: the act half's settings are refused.
server {
  enabled    = false
  retry_join = ["10.0.0.1"]
}

forecast_only = true

queue {
  max_requests = 5
}

reserve {
  driver = "raw_exec"
  config = { command = "/bin/sleep", args = ["infinity"] }
}
