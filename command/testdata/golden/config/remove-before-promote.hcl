# want: server.remove_after
server {
  promote_after = "5m"
  remove_after  = "2m"
}
