# want: nomad.ca_file
# want: Nomad's API client
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  ca_file = "testdata/golden/config/files/not-pem.txt"
}
