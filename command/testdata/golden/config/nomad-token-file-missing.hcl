# want: nomad.token_file
# want: no such file or directory
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
nomad {
  token_file = "testdata/golden/config/files/no-nomad-token"
}
