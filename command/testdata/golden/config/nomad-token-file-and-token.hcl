# want: nomad.token_file
# want: a request to Nomad carries one token
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  token      = "1f0e2c5b-7a9d-4e3f-8b61-2d4c6a8e0f13"
  token_file = "testdata/golden/config/files/not-pem.txt"
}
