# want: acl.token_file
server {
  enabled    = false
  retry_join = ["10.0.0.11"]
}
acl {
  enabled    = true
  token_file = "testdata/golden/config/files/no-such-file"
}
