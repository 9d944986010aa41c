# want: acl.token_file
# want: holds no token
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
acl {
  enabled    = true
  token_file = "testdata/golden/config/files/no-tokens"
}
