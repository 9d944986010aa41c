# want: server.retry_join
# want: client agent
server {
  enabled = false
}
