# want: server.voters
# want: client-with-server-setting.hcl:6,
server {
  enabled    = false
  retry_join = ["provider=consul"]
  voters     = 3
}
