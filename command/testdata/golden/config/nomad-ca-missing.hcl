# want: nomad.ca_file
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  address = "https://127.0.0.1:4646"
  ca_file = "testdata/golden/config/files/no-such-ca.pem"
}
