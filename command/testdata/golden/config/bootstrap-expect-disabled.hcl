# want: server.bootstrap_expect
# want: server.enabled
server {
  enabled          = false
  bootstrap_expect = 3
}
