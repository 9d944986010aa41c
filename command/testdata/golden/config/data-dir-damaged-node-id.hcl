# want: data_dir
# want: not a node id
data_dir = "testdata/golden/config/files/damaged-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
