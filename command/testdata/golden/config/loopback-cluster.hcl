# want: bind_addr
# want: http.address 127.0.0.1:7575 is a loopback address
server {
  enabled          = true
  bootstrap_expect = 3
  retry_join       = ["10.0.0.11", "10.0.0.12"]
}
