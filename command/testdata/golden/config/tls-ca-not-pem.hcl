# want: tls.ca_file
# want: holds no PEM certificate
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
tls {
  ca_file   = "testdata/golden/config/files/not-pem.txt"
  cert_file = "testdata/golden/config/files/generated/agent.pem"
  key_file  = "testdata/golden/config/files/generated/agent-key.pem"
}
