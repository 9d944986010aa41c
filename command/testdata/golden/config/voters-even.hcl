# want: server.voters
server {
  bootstrap_expect = 3
  retry_join       = ["127.0.0.1:17576"]
  voters           = 4
}
