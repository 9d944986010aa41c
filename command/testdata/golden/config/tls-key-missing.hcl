# want: tls.key_file
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
tls {
  cert_file = "testdata/golden/config/files/generated/agent.pem"
  key_file  = "testdata/golden/config/files/no-such-key.pem"
}
