# want: nomad.ca_file
# want: Nomad's API client
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  address = "https://127.0.0.1:4646"
  ca_file = "testdata/golden/config/files/not-pem.txt"
}
