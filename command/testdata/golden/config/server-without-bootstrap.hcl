# want: server.bootstrap_expect
# want: server-without-bootstrap.hcl:5,
server {
  enabled    = true
  retry_join = ["127.0.0.1:17577", "127.0.0.1:17578"]
}
