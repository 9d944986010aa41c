# want: nomad.ca_file
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  ca_file = "testdata/golden/config/files/no-such-ca.pem"
}
