# want: server.bootstrap_expect
# want: server-without-bootstrap.hcl:4,
server {
  enabled = true
}
