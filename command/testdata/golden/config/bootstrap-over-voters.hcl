# want: server.bootstrap_expect
# want: server.voters
server {
  bootstrap_expect = 5
  retry_join       = ["127.0.0.1:17576"]
  voters           = 3
}
