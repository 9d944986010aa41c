# want: server.retry_join[1]
# want: provider=consul
server {
  bootstrap_expect = 3
  retry_join       = ["127.0.0.1:17576", "provider=aws tag_key=foreshape"]
}
