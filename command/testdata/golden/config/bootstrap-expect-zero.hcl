# want: server.bootstrap_expect
server {
  enabled          = true
  bootstrap_expect = 0
}
