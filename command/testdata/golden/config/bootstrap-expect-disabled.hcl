# want: server.bootstrap_expect
# want: server.enabled
server {
  enabled          = false
  bootstrap_expect = 3
  retry_join       = ["10.0.0.11"]
}
