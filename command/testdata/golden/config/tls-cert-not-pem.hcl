# want: tls.cert_file
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
tls {
  cert_file = "testdata/golden/config/files/not-pem.txt"
  key_file  = "testdata/golden/config/files/generated/agent-key.pem"
}
