# want: bind_addr
server {
  enabled          = true
  bootstrap_expect = 3
  retry_join       = ["10.0.0.11", "10.0.0.12"]
}
